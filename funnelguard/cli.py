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

from funnelguard.errors import EXIT_INPUT, FunnelguardError
from funnelguard.findings import RunResult

__all__ = ["main", "run", "build_parser", "default_store_url", "add_common_flags", "write_json",
           "project_of", "store_url_of", "connect_warehouse"]

# Modules that contribute subcommands, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "funnelguard.simulator.cli",
    "contracts.cli",
    "contracts.scaffold_cli",
    "monitors.cli",
    "monitors.maturity.cli",
    "monitors.alerts.cli",
    "funnelguard.runs_cli",
    "monitors.store.cli",
    "monitors.site.cli",
    "model.cli",
    "model.audit_cli",
    "model.evaluation.cli",
)


def default_store_url() -> str:
    """``$FUNNELGUARD_STORE``, else ``sqlite:///.funnelguard/results.db`` in the working directory."""
    from funnelguard.commands import resolve_store_url

    return resolve_store_url(None, None)


def add_common_flags(
    parser: argparse.ArgumentParser,
    *,
    warehouse: bool = True,
    date: str | None = "--date",
    store: bool = True,
    json_out: bool = True,
    contract: str | None = None,
    project: bool = True,
) -> None:
    """The flags every check command shares, spelled the same everywhere."""
    if project:
        parser.add_argument(
            "--project", default=None, metavar="PATH",
            help="project file naming the contracts (default: $FUNNELGUARD_PROJECT, else "
                 "./funnelguard.yaml, else the packaged demo project)")
    if contract is not None:
        parser.add_argument(
            "--contract", default=None, metavar="PATH",
            help=f"contract file overriding the project's {contract} contract")
    if warehouse:
        parser.add_argument("--warehouse", default=None, metavar="URL",
                            help="warehouse SQLAlchemy URL (sqlite:///path, postgresql+psycopg://...);"
                                 " default: the project's `warehouse:`")
    if date == "--date":
        parser.add_argument("--date", required=True, metavar="YYYY-MM-DD",
                            help="partition to check")
    elif date == "--as-of":
        parser.add_argument("--as-of", dest="as_of", required=True, metavar="YYYY-MM-DD",
                            help="knowledge available at this date 00:00 UTC")
    if json_out:
        parser.add_argument("--json", dest="json_out", default=None, metavar="OUT",
                            help="write the result document (docs/results.md) here")
    if store:
        parser.add_argument("--store", default=None, metavar="URL",
                            help="results store URL (default: $FUNNELGUARD_STORE, else the "
                                 "project's `store:`, else sqlite:///.funnelguard/results.db)")


def project_of(args: argparse.Namespace, part: str | None = None):
    """The project of a command line (``--project``), with ``--contract`` replacing ``part``.

    ``--contract`` may name a part of the project (``impressions``), a packaged contract or a
    file.
    """
    import dataclasses

    from funnelguard.project import load_project

    project = load_project(getattr(args, "project", None))
    override = getattr(args, "contract", None)
    if part is not None and override:
        if override in project.contracts:
            contract = project.contracts[override]
        else:
            from contracts.loader import load_contract

            contract = load_contract(override)
        project = dataclasses.replace(project, contracts={**project.contracts, part: contract})
    args.resolved_project = project  # the edge stores the run with what it really used
    return project


def store_url_of(args: argparse.Namespace, project=None) -> str:
    """``--store``, else ``$FUNNELGUARD_STORE``, else the project's, else the default."""
    from funnelguard.commands import resolve_store_url

    if getattr(args, "store", None) or os.environ.get("FUNNELGUARD_STORE"):
        return resolve_store_url(getattr(args, "store", None), None)  # no project needed
    if project is None:
        project = getattr(args, "resolved_project", None)
    if project is None and getattr(args, "project", None) is not None:
        from funnelguard.project import load_project

        project = load_project(args.project)
    elif project is None:
        from funnelguard.project import find_project, load_project

        project = load_project(find_project(None))
    return resolve_store_url(getattr(args, "store", None), project)


def connect_warehouse(args: argparse.Namespace, project):
    """An engine for ``--warehouse`` or the project's ``warehouse:``."""
    from funnelguard.commands import resolve_warehouse_url
    from funnelguard.warehouse import connect

    return connect(resolve_warehouse_url(getattr(args, "warehouse", None), project))


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
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list passing checks too (default: failures, then one summary line)")
    parser.add_argument("--version", action="version", version=f"funnelguard {_version()}")
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
    """Write the result document atomically (see :func:`funnelguard.commands.write_json`)."""
    from funnelguard.commands import write_json as _write

    _write(path, result)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("funnelguard")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _print_summary(result: RunResult, quiet: bool, verbose: bool = False, *, out=None) -> None:
    """Failures first (errors, then warnings), passing checks as one line unless ``verbose``."""
    out = out or sys.stdout
    if result.error is not None:
        print(f"funnelguard {result.command}: {result.error.kind} error: {result.error.message}",
              file=sys.stderr)
        return
    failed = [f for f in result.findings if not f.passed]
    failed.sort(key=lambda f: f.severity != "error")
    passed = [f for f in result.findings if f.passed]
    for f in failed + (passed if verbose and not quiet else []):
        mark = "ok  " if f.passed else ("FAIL" if f.severity == "error" else "WARN")
        where = " ".join(x for x in (f.environment, f.feature, f.task, f.segment) if x)
        print(f"{mark} {f.check:<22} {where:<40} {f.message}", file=out)
    if passed and not verbose and not quiet:
        print(f"ok   {len(passed)} checks passed (-v lists them)", file=out)
    print(f"funnelguard {result.command} {result.partition or ''}: {result.status} "
          f"({len(result.findings)} findings, {len(failed)} not passed)", file=out)
    for name, path in result.artifacts.items():
        print(f"  {name}: {path}", file=out)


def _run_project(args: argparse.Namespace):
    """The project a handler ran on (with its ``--contract``), else the ``--project`` path."""
    return getattr(args, "resolved_project", None) or getattr(args, "project", None)


def run(argv: Sequence[str] | None = None) -> tuple[int, RunResult | None]:
    """Run one command in-process; returns (exit code, result). Tests call this."""
    from funnelguard.commands import execute

    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command_name if hasattr(args, "command_name") else args.command
    store_url = None
    if hasattr(args, "store") and not getattr(args, "no_store", False):
        try:
            store_url = store_url_of(args)
        except FunnelguardError:
            store_url = None  # a bad project is reported by the command itself
    json_out = getattr(args, "json_out", None)
    to_stdout = json_out == "-"  # `--json -`: the document on stdout, the summary on stderr
    done = execute(command, lambda: args.handler(args),
                   partition=getattr(args, "date", None) or getattr(args, "as_of", None),
                   store_url=store_url, json_out=None if to_stdout else json_out,
                   project=lambda: _run_project(args))
    if done.result is None:
        return done.code, None
    if to_stdout:
        print(done.result.dumps())
    _print_summary(done.result, args.quiet, args.verbose,
                   out=sys.stderr if to_stdout else sys.stdout)
    return done.code, done.result


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code, _ = run(argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `funnelguard ... | head`: the reader left. Silence the interpreter's final flush
        # (Python's documented recipe) and report the pipe as SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except json.JSONDecodeError as exc:  # pragma: no cover - defensive
        print(f"funnelguard: bad JSON input: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
