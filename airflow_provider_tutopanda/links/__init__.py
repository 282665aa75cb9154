"""Extra links of the tutopanda provider."""

from __future__ import annotations

from airflow_provider_tutopanda.links.artefact import ArtefactLink, ArtefactsLink

__all__ = ["ArtefactLink", "ArtefactsLink"]
