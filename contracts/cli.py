"""CLI commands of the contracts package: ``validate`` and ``contracts lint|diff``.

Registration imports nothing heavy: pandas and pandera load inside the handlers. ``validate``
returns a :class:`~funnelguard.findings.RunResult` (the edge writes ``--json``, stores it and
exits 0/1); ``contracts lint`` and ``contracts diff`` return exit codes (0 ok, 1 a breaking
diff, 2 problems) and print for a person or a pull request.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate`` and ``contracts`` to the ``funnelguard`` command."""
    from funnelguard.cli import add_common_flags

    p = subparsers.add_parser(
        "validate", help="validate one partition against a data contract",
        description="Validate partition --date of the contract's table for --env; one finding "
                    "per (column, check), passing ones included (docs/contracts.md).")
    add_common_flags(p, contract="ranking_features.yaml")
    p.add_argument("--env", required=True, choices=("offline", "online"),
                   help="which environment's table to validate")
    p.add_argument("--chunk-rows", type=int, default=200_000, metavar="N",
                   help="rows per chunk; memory grows with this, not the partition (default 200000)")
    p.set_defaults(handler=_validate, command_name="validate")

    c = subparsers.add_parser("contracts", help="lint and diff contract files",
                              description="Tooling for contract pull requests.")
    sub = c.add_subparsers(dest="contracts_command", metavar="ACTION", parser_class=type(c))
    sub.required = True
    lint = sub.add_parser("lint", help="check contract files strictly; exit 2 on any problem")
    lint.add_argument("paths", nargs="+", metavar="PATH")
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


def _validate(args: argparse.Namespace):
    from contracts.loader import load_contract
    from contracts.runner import validate_partition
    from funnelguard.errors import InputError
    from funnelguard.warehouse import connect, parse_date

    contract = load_contract(args.contract or "ranking_features")
    if args.env not in contract.tables:
        raise InputError(f"--env: contract {contract.path} has environments "
                         f"{sorted(contract.tables)}, found {args.env!r}")
    if args.chunk_rows < 1:
        raise InputError(f"--chunk-rows: expected a positive number, found {args.chunk_rows}")
    ds = parse_date(args.date)
    engine = connect(args.warehouse)
    try:
        return validate_partition(contract, args.env, engine, ds, chunk_rows=args.chunk_rows)
    finally:
        engine.dispose()


def _lint(args: argparse.Namespace) -> int:
    from contracts.loader import lint_contract
    from funnelguard.errors import EXIT_INPUT, EXIT_PASS

    problems = [p for path in args.paths for p in lint_contract(path)]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"funnelguard contracts lint: {len(args.paths)} file(s), {len(problems)} problem(s)")
    return EXIT_INPUT if problems else EXIT_PASS


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
