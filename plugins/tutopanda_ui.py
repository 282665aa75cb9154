"""The tutopanda UI plugin for a plugins-folder deployment (copy this file to ``$AIRFLOW_HOME/plugins``).

When the ``tutopanda`` distribution is installed its ``airflow.plugins`` entry point already
registers the plugin; then this file defines nothing, so Airflow does not report the same
plugin twice. The code lives in ``airflow_provider_tutopanda.ui``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

if not any(ep.name == "tutopanda_ui" for ep in entry_points(group="airflow.plugins")):
    from airflow_provider_tutopanda.ui.plugin import TutopandaUIPlugin

    __all__ = ["TutopandaUIPlugin"]
