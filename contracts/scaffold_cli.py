"""CLI of the scaffolding: ``funnelguard init`` and the handler of ``funnelguard contracts infer``.

``init DIR --warehouse URL [--tables ...]`` drafts a whole project from an existing warehouse
(:func:`contracts.scaffold.init_project`); ``contracts infer --table T --warehouse URL`` (its
flags are registered by :mod:`contracts.cli`) drafts one contract
(:func:`contracts.infer.infer_contract`). Both return exit codes (0 written, 2 bad input) and
print what they wrote; registration imports nothing heavy.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register", "init_handler", "infer_handler"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``init`` to the ``funnelguard`` command."""
    p = subparsers.add_parser(
        "init", help="draft a project (funnelguard.yaml + contracts) from an existing warehouse",
        description="Profile the warehouse's tables in the database, guess which plays "
                    "impressions, features (offline/online) and labels, and write DIR/"
                    "funnelguard.yaml and a draft contract per part (docs/adopting.md).")
    p.add_argument("dir", metavar="DIR", help="the project folder to write")
    p.add_argument("--warehouse", required=True, metavar="URL",
                   help="warehouse SQLAlchemy URL (sqlite:///path, postgresql+psycopg://...)")
    p.add_argument("--tables", nargs="+", default=None, metavar="[PART=]TABLE[,TABLE]",
                   help="consider only these tables, or name a part's: impressions=T, "
                        "features=OFFLINE[,ONLINE], labels=T")
    p.add_argument("--partition-column", default=None, metavar="COL",
                   help="the partition column of every table that has it (default: inferred)")
    p.add_argument("--key-column", default=None, metavar="COL",
                   help="the key column of every table that has it (default: inferred)")
    p.add_argument("--sample-partitions", type=int, default=28, metavar="N",
                   help="profile the latest N partitions of each table (default 28)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(handler=init_handler, command_name="init")


def _sample(args: argparse.Namespace) -> int:
    from funnelguard.errors import InputError

    n = getattr(args, "sample_partitions", 28)
    if n is not None and (isinstance(n, bool) or n < 1):
        raise InputError(f"--sample-partitions: expected a positive number, found {n}")
    return n


def init_handler(args: argparse.Namespace) -> int:
    """``funnelguard init``: write the project; 0, or an InputError (exit 2)."""
    from contracts.scaffold import init_project, parse_tables

    tables, parts = parse_tables(args.tables)
    written = init_project(args.dir, args.warehouse, tables=tables or None, parts=parts,
                           partition_column=args.partition_column, key_column=args.key_column,
                           sample_partitions=_sample(args), force=args.force)
    for path in written:
        print(f"wrote {path}")
    print(f"funnelguard init: {len(written) - 1} draft contract(s). Next: review each with its "
          f"owner, then `funnelguard contracts lint --project {written[0]}` (docs/adopting.md).")
    return 0


def infer_handler(args: argparse.Namespace) -> int:
    """``funnelguard contracts infer``: print the draft, or write it to ``--out``."""
    from pathlib import Path

    from contracts.infer import infer_contract
    from funnelguard.output_paths import expect_file_path
    from funnelguard.warehouse import connect

    out = getattr(args, "out", None)
    if out:  # before profiling: a bad --out costs no scan of the table
        expect_file_path("--out", out, "a file path for the draft contract")
    engine = connect(args.warehouse)
    try:
        text = infer_contract(engine, args.table, name=getattr(args, "name", None),
                              partition_column=getattr(args, "partition_column", None),
                              key_column=getattr(args, "key_column", None),
                              sample_partitions=_sample(args))
    finally:
        engine.dispose()
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}: a draft contract for table {args.table}; review it with its owner")
    else:
        sys.stdout.write(text)
    return 0
