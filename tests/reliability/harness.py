"""The reliability battery's harness: the projects a case is tried on, the files and argv of
one case, running it in-process, the results store seeded before it, and breaking a copy of a
warehouse.

A :class:`Ctx` names what a case template may say about one project (its warehouse, tables,
columns, a day with data ...); :func:`expand` and :func:`fill` turn a template into an argv and
a message; :func:`run_in_process` runs the CLI and keeps an escaping exception as the traceback
it would print; :func:`assert_outcome` and :func:`assert_intact` are the battery's assertions.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
import yaml

if TYPE_CHECKING:
    from tests.reliability.case_types import Corruption

__all__ = ["Ctx", "Outcome", "sim_ctx", "mkt_ctx", "make_files", "expand", "fill",
           "run_in_process", "assert_outcome", "store_rows", "assert_intact", "seed_store",
           "seeded_stores", "break_warehouse"]


# -- the projects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ctx:
    """What a case template may name about one project.

    Attributes:
        name: ``sim`` (the packaged project on the simulated warehouse) or ``mkt``.
        warehouse: the session fixture's warehouse URL (never written to).
        warehouse_file: its SQLite file (copied before a corruption).
        project: the project file (the packaged one for ``sim``).
        where: the flags that select this project's warehouse and contracts.
        day: a partition with data; seed_day: the partition the seeded store holds.
        as_of: an as-of date with matured labels.
        key: an existing key of ``day``; the remaining fields name the contracts' tables and
            columns, so one template fits both projects.
    """

    name: str
    warehouse: str
    warehouse_file: Path
    project: Path
    where: tuple[str, ...]
    day: str
    seed_day: str
    as_of: str
    key: str
    features_contract: Path
    key_col: str
    part_col: str
    offline: str
    online: str
    impressions: str
    labels: str
    number: str        # an offline numeric feature
    online_number: str  # an online numeric feature
    integer: str       # an integer feature
    category: str      # a categorical feature with an enum
    served_ts: str     # the online table's timestamp column
    event_ts: str      # the impressions' event time
    label_ts: str      # the first stage's event time in the labels table
    dropped: str       # a contract column that corruptions drop
    day_rows: int = 0  # rows of the offline table on ``day``


def sim_ctx(warehouse_url: str) -> Ctx:
    from funnelguard.project import PACKAGED_PROJECT

    path = Path(sa.engine.make_url(warehouse_url).database)
    day = "2026-10-20"
    return _counted(Ctx("sim", warehouse_url, path, Path(PACKAGED_PROJECT),
               ("--warehouse", warehouse_url), day, "2026-10-19", "2026-10-25",
               _first_key(path, "offline_features", "impression_id", "ds", day),
               Path(PACKAGED_PROJECT).parent / "ranking_features.yaml", "impression_id", "ds",
               "offline_features", "serving_log", "impressions", "labels",
               "credit_utilization", "approval_odds", "credit_score", "item_type", "served_at",
               "event_ts", "click_ts", "credit_score"))


def mkt_ctx(m) -> Ctx:
    path = Path(sa.engine.make_url(m.warehouse_url).database)
    import datetime as dt

    day = (m.last - dt.timedelta(days=1)).isoformat()
    return _counted(Ctx("mkt", m.warehouse_url, path, Path(m.project_path),
               ("--project", str(m.project_path)), day,
               (m.last - dt.timedelta(days=2)).isoformat(), m.as_of.isoformat(),
               _first_key(path, "features_batch", "imp_key", "event_date", day),
               Path(m.root) / "contracts" / "marketplace_features.yaml", "imp_key",
               "event_date", "features_batch", "features_served", "ranking_requests",
               "outcomes", "loan_amount", "quoted_apr", "tenure_months", "member_tier",
               "served_ts", "shown_at", "click_time", "loan_amount"))


def _first_key(path: Path, table: str, key: str, part: str, day: str) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        return con.execute(f"SELECT {key} FROM {table} WHERE {part} = ? ORDER BY {key} LIMIT 1",
                           (day,)).fetchone()[0]


def _counted(ctx: Ctx) -> Ctx:
    with sqlite3.connect(f"file:{ctx.warehouse_file}?mode=ro", uri=True) as con:
        rows = con.execute(f"SELECT count(*) FROM {ctx.offline} WHERE {ctx.part_col} = ?",
                           (ctx.day,)).fetchone()[0]
    return dataclasses.replace(ctx, day_rows=rows)


# -- one case: its files, its argv, its run -------------------------------------------------


def make_files(tmp: Path, ctx: Ctx) -> dict[str, str]:
    """The files a case template may name, in the test's own folder."""
    (tmp / "a_file").write_text("just text\n")
    (tmp / "a_dir").mkdir()
    (tmp / "empty.yaml").write_bytes(b"")
    (tmp / "bad.yaml").write_text("name: x\njust: [unclosed\n")
    (tmp / "list.yaml").write_text("- a\n- b\n")
    (tmp / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    not_model = tmp / "not_model"
    not_model.mkdir()
    (not_model / "notes.json").write_text("{}\n")
    (tmp / "thresholds.yaml").write_text("floors: {auc: 3}\n")
    contracts = _contract_paths(ctx)
    missing = tmp / "p_missing"
    missing.mkdir()
    (missing / "funnelguard.yaml").write_text(
        "name: broken\ncontracts:\n  impressions: nope.yaml\n  features: nope2.yaml\n"
        "  labels: nope3.yaml\n")
    nolabels = tmp / "p_nolabels"
    nolabels.mkdir()
    (nolabels / "funnelguard.yaml").write_text(
        f"name: half\ncontracts:\n  impressions: {contracts['impressions']}\n"
        f"  features: {contracts['features']}\n")
    extra = yaml.safe_load(ctx.features_contract.read_text())
    extra["schema"][0]["properties"].append({"name": "shoe_size", "logicalType": "integer",
                                             "required": True})
    (tmp / "extra_column.yaml").write_text(yaml.safe_dump(extra, sort_keys=False))
    config = tmp / "train.yaml"
    config.write_text(_TRAIN_CONFIG)
    project_copy = tmp / "existing_project"  # init must refuse it: a copy, never the fixture's
    project_copy.mkdir()
    shutil.copyfile(ctx.project, project_copy / "funnelguard.yaml")
    return {"tmp": str(tmp), "file": str(tmp / "a_file"), "dir": str(tmp / "a_dir"),
            "empty": str(tmp / "empty.yaml"), "bad_yaml": str(tmp / "bad.yaml"),
            "list_yaml": str(tmp / "list.yaml"), "binary": str(tmp / "binary.yaml"),
            "not_model": str(not_model), "bad_thresholds": str(tmp / "thresholds.yaml"),
            "p_missing": str(missing), "p_nolabels": str(nolabels),
            "train_config": str(config), "project_dir": str(project_copy),
            "extra_contract": str(tmp / "extra_column.yaml")}


# Small and fast; any project (ids get default_id_buckets).
_TRAIN_CONFIG = """\
model: {trunk: [16, 8], embedding_dim: 4, head_hidden: 8, dense_dim: 8, default_id_buckets: 100}
optim: {batch_size: 512, epochs: 1, max_steps: 4}
run: {progress: false, tensorboard: false, checkpoint_every: 0}
"""


def _contract_paths(ctx: Ctx) -> dict[str, str]:
    from funnelguard.project import load_project

    project = load_project(ctx.project)
    return {part: str(c.path) for part, c in project.contracts.items()}


def _fields(ctx: Ctx, files: dict[str, str]) -> dict[str, str]:
    values = {f.name: str(getattr(ctx, f.name)) for f in dataclasses.fields(ctx)
              if f.name != "where"}
    return {**values, **files}


def expand(template: Sequence[str], ctx: Ctx, files: dict[str, str]) -> list[str]:
    """The argv of a template: fields filled, ``{where}`` / ``{wh}`` expanded to flags."""
    values = _fields(ctx, files)
    argv: list[str] = []
    for token in template:
        if token == "{where}":
            argv.extend(ctx.where)
        elif token == "{wh}":
            argv.extend(("--warehouse", ctx.warehouse))
        else:
            argv.append(token.format(**values))
    return argv


def fill(text: str, ctx: Ctx, files: dict[str, str]) -> str:
    return text.format(**_fields(ctx, files))


@dataclass
class Outcome:
    """What one in-process run did."""

    code: int | None
    out: str
    err: str
    traceback: str | None
    result: object = None

    @property
    def text(self) -> str:
        return self.out + "\n" + self.err


def run_in_process(run_cli, capsys, argv: Sequence[str]) -> Outcome:
    """``run_cli(*argv)``; an exception escaping it is kept as the traceback it would print."""
    _rebind_logging_streams()
    capsys.readouterr()
    tb = None
    result = None
    try:
        code, result = run_cli(*argv)
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception:  # noqa: BLE001 - the very thing the battery looks for
        code, tb = None, traceback.format_exc()
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err, tb, result)


def _rebind_logging_streams() -> None:
    """Point log handlers left on an earlier test's (closed) captured stream at this one's.

    Libraries imported by some commands (Evidently, Airflow) install stream handlers bound to
    the stderr of the moment; in one process per command (the real CLI) that stream stays
    open. Without this a later test sees logging's own "--- Logging error ---" traceback,
    which is the harness's, not the product's.
    """
    import logging

    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                handler.stream = sys.stderr  # setStream() would flush the closed one


def assert_outcome(o: Outcome, code: int | tuple[int, ...], message: str) -> None:
    """No traceback, the exit code, the message."""
    assert o.traceback is None, f"traceback escaped the CLI:\n{o.traceback[-3000:]}"
    assert "Traceback (most recent call last)" not in o.text, o.text[-3000:]
    codes = code if isinstance(code, tuple) else (code,)
    assert o.code in codes, f"exit {o.code}, expected {code}; output:\n{o.text[-3000:]}"
    assert message in o.text, f"expected {message!r} in the output:\n{o.text[-3000:]}"


# -- the results store seeded before each case ---------------------------------------------------


def seed_store(ctx: Ctx, path: Path) -> Path:
    """A SQLite store holding this project's validate runs of ``seed_day`` (both environments),
    one of them failing, so it has open alerts too. Built once per session and copied."""
    from funnelguard.cli import run

    url = f"sqlite:///{path}"
    for env in ("offline", "online"):
        code, _ = run(["-q", "validate", *ctx.where, "--date", ctx.seed_day, "--env", env,
                       "--store", url])
        assert code == 0, (ctx.name, env, code)
    # A failing run (a partition that never arrived) adds failing findings and alert state.
    code, _ = run(["-q", "freshness", *ctx.where, "--date", "2031-01-01", "--store", url,
                   "--html", str(path.parent / "html")])
    assert code == 1, (ctx.name, "freshness", code)
    return path


_SEEDED: dict[tuple[str, str], Path] = {}


def seeded_stores(ctxs: dict[str, Ctx], tmp_path_factory) -> dict[str, Path]:
    """:func:`seed_store` of each project, once per session (both test files share them)."""
    out = {}
    for name, ctx in ctxs.items():
        key = (name, ctx.warehouse)
        if key not in _SEEDED:
            _SEEDED[key] = seed_store(ctx, tmp_path_factory.mktemp(f"seeded_{name}") / "results.db")
        out[name] = _SEEDED[key]
    return out


def store_rows(path: Path) -> dict[int, tuple]:
    """id -> (command, dataset, environment, partition, status, findings) of every stored run,
    read with sqlite3 (not the product's code)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute(
            "SELECT r.id, r.command, r.dataset, r.environment, r.partition, r.status, "
            "(SELECT count(*) FROM fg_findings f WHERE f.run_id = r.id) FROM fg_runs r").fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def assert_intact(before: dict[int, tuple], path: Path) -> None:
    """Every run stored before is still there, unchanged, with all its findings."""
    after = store_rows(path)
    lost = {k: v for k, v in before.items() if after.get(k) != v}
    assert not lost, f"stored runs changed or lost: {lost} -> {[after.get(k) for k in lost]}"


# -- breaking a copied warehouse -----------------------------------------------------------------


def break_warehouse(ctx: Ctx, corruption: Corruption, dest: Path, files: dict[str, str]) -> Path:
    """Copy the project's warehouse to ``dest`` and apply ``corruption`` to the copy."""
    shutil.copyfile(ctx.warehouse_file, dest)
    for raw in corruption.sql:
        stmt = fill(raw, ctx, files)
        if stmt == "!garbage":
            dest.write_text("this is not a database\n" * 200)
        elif stmt == "!zero":
            dest.write_bytes(b"")
        elif stmt.startswith("!nullable "):
            _, table, col = stmt.split()
            _rebuild(dest, table, lambda sql, c=col: re.sub(
                rf"\b{c}\b(\s+\w+)\s+NOT NULL", rf"{c}\1", sql, count=1))
        elif stmt.startswith("!ctas "):
            _, table = stmt.split()
            with sqlite3.connect(dest) as con:
                con.execute(f"ALTER TABLE {table} RENAME TO {table}__old")
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}__old")
                con.execute(f"DROP TABLE {table}__old")
        else:
            with sqlite3.connect(dest) as con:
                con.execute(stmt)
    return dest


def _rebuild(path: Path, table: str, edit) -> None:
    with sqlite3.connect(path) as con:
        sql = con.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (table,)).fetchone()[0]
        new = edit(sql)
        assert new != sql, f"nothing to change in {sql}"
        con.execute(new.replace(f"TABLE {table}", f"TABLE {table}__new", 1))
        con.execute(f"INSERT INTO {table}__new SELECT * FROM {table}")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE {table}__new RENAME TO {table}")
