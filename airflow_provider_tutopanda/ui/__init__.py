"""The Airflow UI for tutopanda: run gallery, task-instance artefact tab, model catalogue, costs.

A FastAPI app mounted in Airflow's api-server by :class:`~.plugin.TutopandaUIPlugin` (the
``airflow.plugins`` entry point, or ``plugins/tutopanda_ui.py``), with external views on the
``dag_run`` and ``task_instance`` pages and in the navigation. Pages are server-rendered; the
only script is a small file for the Regenerate button. Nothing here is imported by DAGs or tasks.
"""
