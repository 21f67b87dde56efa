"""Orchestration: what the Airflow DAGs' tasks call.

``airflow_tasks`` runs one funnelguard command in-process and maps its exit code to Airflow's
failure policy; ``jobs`` has one function per DAG task; ``connections`` turns Airflow connections
into SQLAlchemy URLs (the one place); ``readiness`` reads whether a partition's snapshot checks
are clean; ``publishing`` publishes a model directory as the champion. Nothing here is imported
at DAG parse time.
"""
