"""Triggers of the tutopanda provider."""

from __future__ import annotations

from airflow_provider_tutopanda.triggers.producer import ProducerTrigger

__all__ = ["ProducerTrigger"]
