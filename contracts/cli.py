"""CLI commands of the contracts package: ``validate`` and ``contracts lint|diff|infer``.

Registration imports nothing heavy: pandas and pandera load inside the handlers. ``validate``
is a thin adapter over :func:`contracts.commands.run_validate` and returns its
:class:`~funnelguard.findings.RunResult` (the edge writes ``--json``, stores it and exits 0/1);
``contracts lint``, ``contracts diff`` and ``contracts infer`` return exit codes (0 ok, 1 a
breaking diff, 2 problems) and print for a person or a pull request.
"""

from __future__ import annotations

import argparse
import json
import sys

from funnelguard.project import FEATURES, PARTS

__all__ = ["register"]



def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate`` and ``contracts`` to the ``funnelguard`` command."""
    from funnelguard.cli import add_common_flags

    p = subparsers.add_parser(
        "validate", help="validate one partition against a data contract",
        description="Validate partition --date of a project contract's table for --env; one "
                    "finding per (column, check), passing ones included (docs/contracts.md).")
    add_common_flags(p, contract="--dataset")
    p.add_argument("--env", required=True, choices=("offline", "online"),
                   help="which environment's table to validate")
    p.add_argument("--dataset", choices=PARTS, default=FEATURES,
                   help="which of the project's contracts to validate (default features)")
    p.add_argument("--chunk-rows", type=int, default=200_000, metavar="N",
                   help="rows per chunk; memory grows with this, not the partition (default 200000)")
    p.add_argument("--no-history-bounds", dest="history_bounds", action="store_false",
                   help="do not hold numeric features to the band their own history draws "
                        "(history_bound findings)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--engine-checks", dest="engine_checks", action="store_true",
                       default=None,
                       help="run the checks inside the warehouse engine (default where it can: "
                            "SQLite, PostgreSQL, DuckDB, parquet); only examples leave it")
    where.add_argument("--in-memory", dest="engine_checks", action="store_false",
                       help="read the partition in chunks and check it in memory (Pandera)")
    p.set_defaults(handler=_validate, command_name="validate")

    c = subparsers.add_parser("contracts", help="lint, diff and infer contract files",
                              description="Tooling for contract pull requests.")
    sub = c.add_subparsers(dest="contracts_command", metavar="ACTION", parser_class=type(c))
    sub.required = True
    lint = sub.add_parser(
        "lint", help="check contract files (or a project and its contracts) strictly; exit 2 on "
                     "any problem")
    lint.add_argument("paths", nargs="*", metavar="PATH",
                      help="contract files or packaged names")
    lint.add_argument("--project", default=None, metavar="PATH",
                      help="also lint this project file, all its contracts and how they fit "
                           "together")
    lint.set_defaults(handler=_lint, command_name="contracts lint")
    diff = sub.add_parser(
        "diff", help="classify every change between two contracts; exit 1 if one is breaking")
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")
    diff.add_argument("--format", choices=("markdown", "json"), default="markdown")
    diff.add_argument("--backtest-warehouse", metavar="URL", default=None,
                      help="also report the share of recent partitions' rows each version fails")
    diff.add_argument("--days", type=int, default=7, metavar="N",
                      help="partitions to backtest (default 7)")
    diff.set_defaults(handler=_diff, command_name="contracts diff")
    infer = sub.add_parser(
        "infer", help="draft a contract for one warehouse table, for its owner to review",
        description="Infer a draft ODCS contract (types, nullability, ranges, allowed values, "
                    "candidate sentinels, partition and key) from one table.")
    infer.add_argument("--table", required=True, metavar="T", help="the table to describe")
    infer.add_argument("--warehouse", required=True, metavar="URL",
                       help="warehouse SQLAlchemy URL")
    infer.add_argument("--partition-column", default=None, metavar="COL",
                       help="the partition column (default: inferred)")
    infer.add_argument("--key-column", default=None, metavar="COL",
                       help="the primary key (default: inferred)")
    infer.add_argument("--out", default=None, metavar="PATH",
                       help="write the draft here (default: stdout)")
    infer.set_defaults(handler=_infer, command_name="contracts infer")


def _validate(args: argparse.Namespace):
    from contracts.commands import contract_to_validate, run_validate
    from funnelguard.cli import connect_warehouse, project_of
    from funnelguard.warehouse import parse_date

    project = project_of(args, args.dataset)
    contract_to_validate(project, args.dataset, args.env, args.chunk_rows)  # before connecting
    day = parse_date(args.date)
    engine = connect_warehouse(args, project)
    try:
        return run_validate(project, engine, day, environment=args.env, dataset=args.dataset,
                            chunk_rows=args.chunk_rows, engine_checks=args.engine_checks,
                            history_bounds=args.history_bounds)
    finally:
        engine.dispose()


def _project_problems(path: str) -> tuple[int, list[str]]:
    """(files checked, problems) of a project file and its contracts, each as ``file:line: ...``."""
    from contracts.errors import ContractError
    from funnelguard.errors import InputError
    from funnelguard.project import ProjectError, find_project, load_project

    try:
        file = find_project(path)
    except InputError as exc:
        return 0, [f"{path}: {exc}"]
    try:
        project = load_project(file)
    except ProjectError as exc:
        return 1 + len({p.path for p in exc.problems} - {exc.path}), [str(p) for p in exc.problems]
    except ContractError as exc:
        return 1 + len({p.path for p in exc.problems}), [str(p) for p in exc.problems]
    return 1 + len(project.contracts), []


def _lint(args: argparse.Namespace) -> int:
    from contracts.loader import lint_contract
    from funnelguard.errors import EXIT_INPUT, EXIT_PASS, InputError

    if not args.paths and not args.project:
        raise InputError("contracts lint: expected contract PATHs or --project PATH, found neither")
    problems = [str(p) for path in args.paths for p in lint_contract(path)]
    files = len(args.paths)
    if args.project:
        checked, found = _project_problems(args.project)
        files += checked
        problems += found
    for problem in problems:
        print(problem, file=sys.stderr)
    where = f" (project {args.project})" if args.project else ""
    print(f"funnelguard contracts lint: {files} file(s){where}, {len(problems)} problem(s)")
    return EXIT_INPUT if problems else EXIT_PASS


def _infer(args: argparse.Namespace) -> int:
    # Inference lives in contracts.scaffold_cli (with `funnelguard init`); import it only here.
    from contracts.scaffold_cli import infer_handler

    return infer_handler(args)


def _diff(args: argparse.Namespace) -> int:
    from contracts.diff import diff_contracts, is_breaking, render_markdown
    from contracts.loader import load_contract
    from funnelguard.errors import EXIT_FAIL, EXIT_PASS, InputError

    old, new = load_contract(args.old), load_contract(args.new)
    if old.name != new.name:
        raise InputError(f"expected two versions of one contract, found {old.name!r} "
                         f"({old.path}) and {new.name!r} ({new.path})")
    changes = diff_contracts(old, new)
    report = None
    if args.backtest_warehouse:
        if args.days < 1:
            raise InputError(f"--days: expected a positive number, found {args.days}")
        from contracts.backtest import backtest
        from funnelguard.warehouse import connect

        engine = connect(args.backtest_warehouse)
        try:
            report = backtest(old, new, engine, args.days)
        finally:
            engine.dispose()
    if args.format == "json":
        print(json.dumps({"contract": new.name, "old": {"path": old.path, "version": old.version},
                          "new": {"path": new.path, "version": new.version},
                          "breaking": is_breaking(changes),
                          "changes": [c.to_json() for c in changes], "backtest": report}, indent=2))
    else:
        print(render_markdown(old, new, changes, report))
    return EXIT_FAIL if is_breaking(changes) else EXIT_PASS
