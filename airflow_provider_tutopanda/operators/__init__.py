"""Operators of the tutopanda provider."""

from __future__ import annotations

from airflow_provider_tutopanda.operators.producer import (
    MediaProducerOperator,
    ProducerFailed,
    ProducerOperator,
    PromptProducerOperator,
)

__all__ = ["MediaProducerOperator", "ProducerFailed", "ProducerOperator", "PromptProducerOperator"]
