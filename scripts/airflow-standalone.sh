#!/usr/bin/env bash
# `make airflow`: Airflow 3.3's components (API server + UI, scheduler, DAG processor,
# triggerer) with this project's DAGs and a project-local AIRFLOW_HOME (.funnelguard/airflow, a
# SQLite metadata DB, LocalExecutor), every listening socket on 127.0.0.1. The funnelguard
# connections default to the demo warehouse and store (run `make demo` first, or set
# AIRFLOW_CONN_FUNNELGUARD_* yourself: docs/operations.md). The admin password is printed by
# the API server and kept in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated.
#
# Why not `airflow standalone`: it runs `airflow scheduler` and `airflow triggerer` with their
# log servers (ports 8793 and 8794), which Airflow 3.3 binds to every interface
# (airflow/utils/serve_logs/core.py: uvicorn host "") with no setting for the host. On one
# machine the API server reads the task logs from $AIRFLOW__LOGGING__BASE_LOG_FOLDER itself, so
# the scheduler and the triggerer run with --skip-serve-logs, the API server with
# --host 127.0.0.1, and the scheduler's health-check server (off) is pinned to 127.0.0.1 too.
#
# `scripts/airflow-standalone.sh --print-plan` prints the Airflow settings (AIRFLOW__*) and the
# component commands, and starts nothing (tests/dags/test_airflow_standalone.py reads it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PORT="${AIRFLOW_PORT:-8080}"
HOST=127.0.0.1

export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.funnelguard/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
# LocalExecutor starts one worker process per parallelism slot: keep it small on a laptop.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
# Every address a component listens on or is reached at: 127.0.0.1, whatever the caller set.
export AIRFLOW__API__HOST="$HOST"
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://$HOST:$PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://$HOST:$PORT/execution/"
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=False
export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST="$HOST"
# The task logs `make demo` wrote, and the ones the LocalExecutor's workers write.
export AIRFLOW__LOGGING__BASE_LOG_FOLDER="$AIRFLOW_HOME/logs"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"

# The components, each as `airflow ARGS`; no log server is started (see above).
COMPONENTS=(
    "api-server --host $HOST --port $PORT"
    "scheduler --skip-serve-logs"
    "dag-processor"
    "triggerer --skip-serve-logs"
)

if [[ "${1:-}" == "--print-plan" ]]; then
    # (a password in a URL is shown as ***)
    env | grep '^AIRFLOW__' | sort | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#; s/^/env /'
    printf 'run %s\n' "${COMPONENTS[@]}"
    exit 0
fi

# Connections: keep what the caller configured; otherwise the demo's warehouse and store.
export AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE="${AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE:-sqlite:///$ROOT/.funnelguard/demo/warehouse.db}"
export AIRFLOW_CONN_FUNNELGUARD_STORE="${AIRFLOW_CONN_FUNNELGUARD_STORE:-sqlite:///$ROOT/.funnelguard/demo/results.db}"
export FUNNELGUARD_OUTPUT_DIR="${FUNNELGUARD_OUTPUT_DIR:-$ROOT/demo-output}"
if [[ -z "${AIRFLOW_CONN_FUNNELGUARD_SLACK:-}" ]]; then
    echo "note: AIRFLOW_CONN_FUNNELGUARD_SLACK is not set: the send_alerts tasks are skipped and" \
         "Slack alerts stay queued in the results store's outbox until it is (docs/operations.md)." >&2
fi

# The components start `airflow ...` subprocesses of their own: the venv must be on PATH.
export PATH="$VENV/bin:$PATH"
mkdir -p "$AIRFLOW_HOME" "$AIRFLOW__LOGGING__BASE_LOG_FOLDER"
cd "$ROOT"
"$VENV/bin/airflow" db migrate >/dev/null

PIDS=()
stop() {
    trap - INT TERM EXIT
    if ((${#PIDS[@]})); then
        kill -TERM "${PIDS[@]}" 2>/dev/null || true
        wait "${PIDS[@]}" 2>/dev/null || true
    fi
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

for component in "${COMPONENTS[@]}"; do
    name="${component%% *}"
    # shellcheck disable=SC2086 # the component's arguments are split on purpose
    "$VENV/bin/airflow" $component > >(sed -u "s/^/[$name] /") 2>&1 &
    PIDS+=("$!")
done
echo "Airflow UI: http://$HOST:$PORT  (AIRFLOW_HOME=$AIRFLOW_HOME, DAGs from $ROOT/dags;" \
     "components: ${#PIDS[@]}, all on $HOST; Ctrl-C stops them)"
# One component ending (a crash, a port in use) ends them all.
wait -n "${PIDS[@]}" || true
echo "an Airflow component exited: stopping the others" >&2
