"""The ``funnelguard`` command: one entry point, subcommands registered by each package.

Each package has a ``cli`` module with ``register(subparsers)``; its handlers take the parsed
arguments and return a :class:`~funnelguard.findings.RunResult` (or an ``int`` exit code for
commands that are not checks). This module is the edge: it writes ``--json``, stores the run
(``--store``), prints a summary and maps the outcome to the documented exit code:
0 pass, 1 an error-severity finding failed, 2 bad input or usage, 3 environment failure.

Registration modules import nothing heavy at module level, so ``funnelguard --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from funnelguard.errors import (
    EXIT_FAIL,
    EXIT_INPUT,
    EXIT_PASS,
    FunnelguardError,
)
from funnelguard.findings import ErrorInfo, RunResult

__all__ = ["main", "run", "build_parser", "default_store_url", "add_common_flags", "write_json"]

# Modules that contribute subcommands, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "funnelguard.simulator.cli",
    "contracts.cli",
    "monitors.cli",
    "monitors.maturity.cli",
    "monitors.alerts.cli",
    "model.cli",
    "model.evaluation.cli",
)


def default_store_url() -> str:
    """``$FUNNELGUARD_STORE``, else ``sqlite:///.funnelguard/results.db`` in the working directory."""
    return os.environ.get("FUNNELGUARD_STORE") or "sqlite:///.funnelguard/results.db"


def add_common_flags(
    parser: argparse.ArgumentParser,
    *,
    warehouse: bool = True,
    date: str | None = "--date",
    store: bool = True,
    json_out: bool = True,
    contract: str | None = None,
) -> None:
    """The flags every check command shares, spelled the same everywhere."""
    if contract is not None:
        parser.add_argument(
            "--contract", default=None, metavar="PATH",
            help=f"contract file (default: the packaged contracts/{contract})",
        )
    if warehouse:
        parser.add_argument("--warehouse", required=True, metavar="URL",
                            help="warehouse SQLAlchemy URL (sqlite:///path, postgresql+psycopg://...)")
    if date == "--date":
        parser.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="partition (ds) to check")
    elif date == "--as-of":
        parser.add_argument("--as-of", dest="as_of", required=True, metavar="YYYY-MM-DD",
                            help="knowledge available at this date 00:00 UTC")
    if json_out:
        parser.add_argument("--json", dest="json_out", default=None, metavar="OUT",
                            help="write the result document (docs/results.md) here")
    if store:
        parser.add_argument("--store", default=None, metavar="URL",
                            help="results store URL (default: $FUNNELGUARD_STORE or "
                                 "sqlite:///.funnelguard/results.db)")


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 2 with the message, like every other bad input."""

    def error(self, message: str) -> None:  # pragma: no cover - argparse calls sys.exit
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="funnelguard", description="Data contracts, monitoring and guarded "
                     "training for the funnel ranking model. Exit codes: 0 pass, 1 a check "
                     "failed, 2 bad input, 3 environment failure.")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def write_json(path: str, result: RunResult) -> None:
    """Write the result document atomically (a reader never sees half a file)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(result.dumps() + "\n")
    tmp.replace(out)


def _print_summary(result: RunResult, quiet: bool) -> None:
    if result.error is not None:
        print(f"funnelguard {result.command}: {result.error.kind} error: {result.error.message}",
              file=sys.stderr)
        return
    shown = result.failures if quiet else result.findings
    for f in shown:
        mark = "ok  " if f.passed else ("FAIL" if f.severity == "error" else "WARN")
        where = " ".join(x for x in (f.environment, f.feature, f.task, f.segment) if x)
        print(f"{mark} {f.check:<22} {where:<40} {f.message}")
    failed = len(result.failures)
    print(f"funnelguard {result.command} {result.partition or ''}: {result.status} "
          f"({len(result.findings)} findings, {failed} not passed)")
    for name, path in result.artifacts.items():
        print(f"  {name}: {path}")


def _store(args: argparse.Namespace, result: RunResult) -> None:
    """Persist a check's result in the results store when the command takes ``--store``."""
    if not hasattr(args, "store") or getattr(args, "no_store", False):
        return
    from monitors.store import open_store

    store = open_store(args.store or default_store_url())
    store.record_run(result)


def run(argv: Sequence[str] | None = None) -> tuple[int, RunResult | None]:
    """Run one command in-process; returns (exit code, result). Tests call this."""
    parser = build_parser()
    args = parser.parse_args(argv)
    result: RunResult | None = None
    try:
        outcome = args.handler(args)
        if isinstance(outcome, int):
            return outcome, None
        result = outcome
        _store(args, result)
    except FunnelguardError as exc:
        result = RunResult(
            command=args.command_name if hasattr(args, "command_name") else args.command,
            partition=getattr(args, "date", None) or getattr(args, "as_of", None),
            error=ErrorInfo(kind=exc.kind, message=str(exc)),
        )
        code = exc.exit_code
    else:
        code = EXIT_FAIL if result.status == "fail" else EXIT_PASS
    if getattr(args, "json_out", None):
        write_json(args.json_out, result)
    _print_summary(result, args.quiet)
    return code, result


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code, _ = run(argv)
    except KeyboardInterrupt:
        return 130
    except json.JSONDecodeError as exc:  # pragma: no cover - defensive
        print(f"funnelguard: bad JSON input: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
