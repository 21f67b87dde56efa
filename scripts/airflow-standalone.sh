#!/usr/bin/env bash
# `make airflow`: Airflow 3 standalone (scheduler, DAG processor, triggerer, API server + UI) on
# 127.0.0.1 with this project's DAGs and a project-local AIRFLOW_HOME (.funnelguard/airflow, a
# SQLite metadata DB). The funnelguard connections default to the demo warehouse and store
# (run `make demo` first, or set AIRFLOW_CONN_FUNNELGUARD_* yourself: docs/operations.md).
# The admin password is printed by Airflow and kept in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PORT="${AIRFLOW_PORT:-8080}"

export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.funnelguard/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# LocalExecutor starts one worker process per parallelism slot: keep it small on a laptop.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"

# Connections: keep what the caller configured; otherwise the demo's warehouse and store.
export AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE="${AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE:-sqlite:///$ROOT/.funnelguard/demo/warehouse.db}"
export AIRFLOW_CONN_FUNNELGUARD_STORE="${AIRFLOW_CONN_FUNNELGUARD_STORE:-sqlite:///$ROOT/.funnelguard/demo/results.db}"
export FUNNELGUARD_OUTPUT_DIR="${FUNNELGUARD_OUTPUT_DIR:-$ROOT/demo-output}"
if [[ -z "${AIRFLOW_CONN_FUNNELGUARD_SLACK:-}" ]]; then
    echo "note: AIRFLOW_CONN_FUNNELGUARD_SLACK is not set: Slack alerts stay queued in the results" \
         "store's outbox until it is (docs/operations.md)." >&2
fi

# standalone starts its components as `airflow ...` subprocesses: the venv must be on PATH.
export PATH="$VENV/bin:$PATH"
mkdir -p "$AIRFLOW_HOME"
cd "$ROOT"
echo "Airflow UI: http://127.0.0.1:$PORT  (AIRFLOW_HOME=$AIRFLOW_HOME, DAGs from $ROOT/dags)"
exec "$VENV/bin/airflow" standalone
