"""Orchestration: what the Airflow DAGs' tasks call.

``airflow_tasks`` is the edge: it loads the task's project (the DAG's ``project`` param, else
``$FUNNELGUARD_PROJECT`` ...), resolves the warehouse and store (connections, else the
project's), calls one registered command function through ``funnelguard.commands.execute`` and
maps its exit code to Airflow's failure policy; ``jobs`` has one function per DAG task;
``connections`` turns Airflow connections into SQLAlchemy URLs (the one place); ``readiness``
reads whether a partition's snapshot checks are clean; ``publishing`` publishes a model
directory as the champion. Nothing here is imported at DAG parse time.
"""
