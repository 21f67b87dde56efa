"""Task log files for ``dag.test()`` runs, written where the Airflow UI reads them.

A worker's supervisor writes each try's log to ``[logging] base_log_folder`` /
``[logging] log_filename_template`` (``dag_id=…/run_id=…/task_id=…/[map_index=…/]attempt=N.log``,
JSON lines), and the UI and the REST API read that file. ``dag.test()`` runs every task in the
calling process (Airflow 3.3's ``InProcessTestSupervisor``) and opens no log file: the output
goes to the console only, and the UI later says "Log file not found" for every task of a
``make demo`` run.

:class:`TaskLogFiles` fills that gap with Airflow's documented extension points: it is an
Airflow *listener* (``on_task_instance_running`` / ``…_success`` / ``…_failed`` / ``…_skipped``,
which the task runner calls in this process). While a task instance runs it copies to that
try's file, one JSON record per line (``timestamp``, ``level``, ``event``, ``logger``) with
secrets masked as in a worker's log:

- what the process writes to ``sys.stdout`` / ``sys.stderr`` (the task's prints, our commands'
  summaries and the "results site:" line);
- the records of non-Airflow loggers (our packages, the providers' hooks);
- Airflow's own task log lines ("Task failed with exception" and its traceback), through a
  processor inserted into structlog's configured chain for the duration.

The console still gets everything, and only what the configured level lets through (the demo
runs at WARNING, so the files hold the prints, warnings and errors). Not captured: what Airflow
logs before the ``running`` hook and after the terminal one. A sensor rescheduled within one
try appends to its file, as a worker does. Use it around ``dag.test()``:
``with TaskLogFiles(): dag.test(...)``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from airflow.listeners import hookimpl

__all__ = ["TaskLogFiles", "task_log_path"]

# Airflow's own server-side loggers: in a deployment they log to the API server or the
# scheduler, not to the task's file (dag.test runs the execution API in this process too).
_SERVER_LOGGERS = ("airflow.api_fastapi", "airflow.models", "airflow.jobs",
                   "airflow.dag_processing",
                   "airflow.serialization", "sqlalchemy", "alembic", "httpx", "httpcore",
                   "uvicorn")
# dag.test()'s own loop ("[DAG TEST] end task"): not part of any task's log.
_DAG_TEST_LOGGERS = ("airflow.sdk.definitions.dag",)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A console line of Airflow's structlog renderer: "2026-…Z [info     ] event  [logger] k=v".
_RENDERED = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z? \[[a-z]+\s*\] ")


def task_log_path(ti: Any, base: str | Path | None = None) -> Path:
    """The log file of ``ti``'s current try, as Airflow's executors name it.

    Args:
        ti: a task instance (runtime, ORM or anything with ``dag_id``, ``run_id``, ``task_id``,
            ``map_index`` and ``try_number``).
        base: the log folder (default ``[logging] base_log_folder``).
    """
    from airflow.configuration import conf
    from airflow.utils.helpers import log_filename_template_renderer

    folder = Path(base or conf.get("logging", "base_log_folder")).expanduser()
    return folder / log_filename_template_renderer()(ti=ti, try_number=ti.try_number)


def _traceback(exc_info: Any) -> str:
    import traceback

    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or exc_info[0] is None:
        return ""
    return "".join(traceback.format_exception(*exc_info)).rstrip()


def _redactor():
    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # pragma: no cover - a future Airflow moved it: keep the log, unmasked
        return lambda text: text
    return redact


class _LogFile:
    """One try's file, one JSON record per line; ``\\r`` keeps the last segment (a progress bar)."""

    def __init__(self, path: Path, mode: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open(mode, encoding="utf-8")
        self._partial: dict[str, str] = {}
        self._redact = _redactor()

    def write(self, stream: str, text: str) -> None:
        """Text written to ``stream`` (stdout, stderr): each complete line is a record."""
        lines = (self._partial.pop(stream, "") + text).split("\n")
        if lines[-1]:
            self._partial[stream] = lines[-1]
        for line in lines[:-1]:
            line = _ANSI.sub("", line).rsplit("\r", 1)[-1].rstrip()
            if line.strip() and not _RENDERED.match(line):  # rendered lines come as events
                self.record(line, "error" if stream == "stderr" else "info", f"task.{stream}")

    def record(self, event: str, level: str, logger: str, when: dt.datetime | None = None,
               **extra: Any) -> None:
        """Write one record (secrets masked)."""
        record = {"timestamp": (when or dt.datetime.now(dt.UTC)).isoformat(), "level": level,
                  "event": str(self._redact(event)), "logger": logger}
        record.update({k: str(self._redact(str(v))) for k, v in extra.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        for stream, rest in list(self._partial.items()):
            self.write(stream, rest + "\n")
        self._partial.clear()
        self._file.close()


class _Tee(io.TextIOBase):
    """A text stream that writes to the console and to the current try's file."""

    def __init__(self, console: TextIO, sink: _LogFile, name: str) -> None:
        self.console, self._sink, self._name = console, sink, name

    def write(self, text: str) -> int:
        self.console.write(text)
        self._sink.write(self._name, text)
        return len(text)

    def flush(self) -> None:
        self.console.flush()

    def isatty(self) -> bool:
        return self.console.isatty()

    def fileno(self) -> int:
        return self.console.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.console, "encoding", "utf-8")


class _RecordHandler(logging.Handler):
    """Copies the records of non-Airflow loggers (our packages, the providers' hooks …)."""

    def __init__(self, sink: _LogFile) -> None:
        super().__init__(level=logging.NOTSET)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_SERVER_LOGGERS):
            return
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self._sink.record(text, record.levelname.lower(), record.name,
                              dt.datetime.fromtimestamp(record.created, dt.UTC))
        except Exception:  # noqa: BLE001 - a log copy must never fail the task
            self.handleError(record)


class TaskLogFiles:
    """An Airflow listener writing each try's log file during ``dag.test()`` (module docstring).

    Args:
        base: the log folder (default ``[logging] base_log_folder``).

    Attributes:
        written: every file written, in order.
    """

    def __init__(self, base: str | Path | None = None) -> None:
        self.base = base
        self.written: list[Path] = []
        self._opened: dict[Path, str] = {}
        self._current: tuple[_LogFile, TextIO, TextIO, logging.Handler] | None = None
        self._processors: list[Any] = []

    # -- the listener hooks (called by the task runner, in this process) --------------------
    @hookimpl
    def on_task_instance_running(self, previous_state, task_instance) -> None:
        self._stop()
        path = task_log_path(task_instance, self.base)
        ti_id = str(getattr(task_instance, "id", ""))
        # The same try resumed (a sensor rescheduled) appends, as a worker does; a new run
        # that reuses the path (the demo run again for the same partition) starts it afresh.
        mode = "a" if self._opened.get(path) == ti_id else "w"
        self._opened[path] = ti_id
        if path not in self.written:
            self.written.append(path)
        sink = _LogFile(path, mode)
        sink.record(f"{task_instance.task_id} try {task_instance.try_number}: running under "
                    "dag.test() in this process (log copied by funnelguard.demo.task_logs)",
                    "info", "task")
        handler = _RecordHandler(sink)
        logging.getLogger().addHandler(handler)
        self._current = (sink, sys.stdout, sys.stderr, handler)
        sys.stdout = _Tee(sys.stdout, sink, "stdout")
        sys.stderr = _Tee(sys.stderr, sink, "stderr")

    @hookimpl
    def on_task_instance_success(self, previous_state, task_instance) -> None:
        self._stop("success")

    @hookimpl
    def on_task_instance_failed(self, previous_state, task_instance, error) -> None:
        state = getattr(task_instance.state, "value", task_instance.state) or "failed"
        self._stop(str(state), "error")

    @hookimpl
    def on_task_instance_skipped(self, previous_state, task_instance) -> None:
        self._stop("skipped")

    def _stop(self, state: str | None = None, level: str = "info") -> None:
        if self._current is None:
            return
        sink, stdout, stderr, handler = self._current
        self._current = None
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = stdout, stderr
        logging.getLogger().removeHandler(handler)
        if state:
            sink.record(f"task finished: {state}", level, "task")
        sink.close()

    # -- Airflow's own task log lines ---------------------------------------------------------
    def _copy_event(self, logger: Any, method_name: str,
                    event_dict: dict[str, Any]) -> dict[str, Any]:
        """A structlog processor: Airflow's task log lines ("Task failed with exception" and its
        traceback, "Skipping task.") go to the current try's file too."""
        name = str(event_dict.get("logger") or getattr(logger, "name", "") or "")
        if self._current is not None and not name.startswith(_SERVER_LOGGERS + _DAG_TEST_LOGGERS):
            text = str(event_dict.get("event", ""))
            if event_dict.get("exc_info"):
                text += "\n" + _traceback(event_dict["exc_info"])
            extra = {k: v for k, v in event_dict.items()
                     if k not in ("event", "level", "logger", "timestamp", "exc_info", "loc",
                                  "logger_name")}
            try:
                self._current[0].record(text, str(event_dict.get("level", method_name)),
                                        name or "task", **extra)
            except Exception:  # noqa: BLE001, S110 - a log copy must never fail the task
                pass
        return event_dict

    # -- registration ------------------------------------------------------------------------
    def __enter__(self) -> TaskLogFiles:
        import structlog
        from airflow.sdk.listener import get_listener_manager

        # Loggers cached on first use keep the configured list object, so the copy is inserted
        # into that list (before the renderer), not configured anew.
        self._processors = structlog.get_config()["processors"]
        self._processors.insert(max(len(self._processors) - 1, 0), self._copy_event)
        get_listener_manager().add_listener(self)
        return self

    def __exit__(self, *exc: object) -> None:
        from airflow.sdk.listener import get_listener_manager

        self._stop()
        if self._copy_event in self._processors:
            self._processors.remove(self._copy_event)
        manager = get_listener_manager()
        if manager.pm.is_registered(self):
            manager.pm.unregister(self)
