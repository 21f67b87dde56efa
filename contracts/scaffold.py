"""Scaffolding a project from an existing warehouse: ``funnelguard init``.

:func:`init_project` profiles the warehouse's tables in the database
(:func:`contracts.profile.profile_table`), guesses which table plays which part — labels: the
table with pairs of timestamps like ``X_time``/``X_landed`` (one per funnel stage); features:
two tables with nearly the same columns (offline and online environments of one contract) or
one wide table; impressions: the table with a timestamp whose key the others share — drafts a
contract per part (:mod:`contracts.infer`) with ``maturityWindows`` from the observed landing
delays, and writes ``DIR/funnelguard.yaml`` and ``DIR/contracts/*.yaml``. Where a part cannot
be guessed it stops with an :class:`InitError` saying which, and how to name it
(``--tables features=features_batch,features_served``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contracts.infer import draft_document, draft_header, label_pairs, render_contract
from contracts.profile import TableProfile, profile_table
from funnelguard.errors import InputError
from funnelguard.project import FEATURES, IMPRESSIONS, LABELS, PARTS

__all__ = ["InitError", "PARTS", "parse_tables", "guess_parts", "maturity_windows", "init_project"]

PASSWORD_VAR = "FUNNELGUARD_WAREHOUSE_PASSWORD"
_ONLINE = re.compile(r"online|serv|log|live|realtime|stream", re.IGNORECASE)
_OFFLINE = re.compile(r"offline|batch|train|snapshot|hist", re.IGNORECASE)
_EVENT_NAME = re.compile(r"shown|event|served|impress|request|ts$|time", re.IGNORECASE)
_SIMILAR = 0.6  # Jaccard similarity of column names for two tables of one features contract


class InitError(InputError):
    """``funnelguard init`` could not infer a part of the project (exit 2)."""


def parse_tables(specs: Sequence[str] | None) -> tuple[list[str], dict[str, list[str]]]:
    """``--tables a b`` / ``a,b`` / ``features=x,y`` -> (tables to consider, part -> tables).

    Raises:
        InitError: an unknown part, or a part given twice.
    """
    tables: list[str] = []
    parts: dict[str, list[str]] = {}
    for spec in specs or ():
        part, sep, names = spec.partition("=")
        listed = [t.strip() for t in (names if sep else spec).split(",") if t.strip()]
        if sep:
            if part not in PARTS:
                raise InitError(f"--tables {spec}: expected a part of {list(PARTS)} before `=`, "
                                f"found {part!r}")
            if part in parts:
                raise InitError(f"--tables: part {part!r} is named twice")
            limit = 2 if part == FEATURES else 1
            if not 1 <= len(listed) <= limit:
                raise InitError(f"--tables {spec}: expected {limit} table(s) for {part} "
                                f"(features=OFFLINE[,ONLINE]), found {len(listed)}")
            parts[part] = listed
        tables += [t for t in listed if t not in tables]
    return tables, parts


def _shared(a: TableProfile, b: TableProfile) -> float:
    x, y = set(a.names), set(b.names)
    return len(x & y) / max(len(x | y), 1)


def _hint(part: str) -> str:
    tables = "OFFLINE_TABLE,ONLINE_TABLE" if part == FEATURES else "TABLE"
    return f"name it with --tables {part}={tables}"


def _one(part: str, candidates: list[str], why: str, considered: Sequence[str]) -> str:
    if len(candidates) == 1:
        return candidates[0]
    found = f"candidates {candidates}" if candidates else f"none among {sorted(considered)}"
    raise InitError(f"could not infer the {part} table: expected {why}, found {found}; "
                    f"{_hint(part)}")


def _online_last(a: TableProfile, b: TableProfile) -> tuple[str, str]:
    """(offline, online) of two feature tables: by name, else the one with extra timestamps."""
    for first, second in ((a, b), (b, a)):
        if _ONLINE.search(second.table) and not _ONLINE.search(first.table):
            return first.table, second.table
        if _OFFLINE.search(first.table) and not _OFFLINE.search(second.table):
            return first.table, second.table
    extra = {p.table: sum(c.logical_type == "timestamp" for c in p.columns if c.name not in q.names)
             for p, q in ((a, b), (b, a))}
    online = max((a, b), key=lambda p: (extra[p.table], len(p.columns)))
    return (b.table if online is a else a.table), online.table


def guess_parts(profiles: Mapping[str, TableProfile], given: Mapping[str, Sequence[str]]
                ) -> dict[str, list[str]]:
    """Part -> tables (features: [offline] or [offline, online]), the given ones kept.

    Raises:
        InitError: a part that cannot be guessed, saying which and how to name it.
    """
    parts = {p: list(t) for p, t in given.items()}

    def free() -> list[str]:
        return [t for t in profiles if all(t not in ts for ts in parts.values())]

    if LABELS not in parts:
        most = max((len(label_pairs(profiles[t])) for t in free()), default=0)
        with_pairs = [t for t in free() if most and len(label_pairs(profiles[t])) == most]
        parts[LABELS] = [_one(LABELS, with_pairs, "one table with pairs of timestamps like "
                                "X_time/X_landed or X_at/X_loaded_at (one per funnel stage)",
                                profiles)]
    if FEATURES not in parts:
        pairs = sorted(((_shared(profiles[a], profiles[b]), a, b) for a in free() for b in free()
                        if a < b and _shared(profiles[a], profiles[b]) >= _SIMILAR), reverse=True)
        if pairs and (len(pairs) == 1 or pairs[0][0] > pairs[1][0]):
            parts[FEATURES] = list(_online_last(profiles[pairs[0][1]], profiles[pairs[0][2]]))
    if IMPRESSIONS not in parts:
        others = [profiles[ts[0]] for ts in parts.values()]
        stamped = [t for t in free() if profiles[t].key_column and any(
            c.logical_type == "timestamp" for c in profiles[t].columns)]
        score = {t: sum(profiles[t].key_column in o.names for o in others) for t in stamped}
        best = max(score.values(), default=0)
        top = sorted((t for t in stamped if score[t] == best and best), key=lambda t: len(
            profiles[t].columns))
        if len(top) > 1 and len(profiles[top[0]].columns) < len(profiles[top[1]].columns):
            top = top[:1]
        parts[IMPRESSIONS] = [_one(IMPRESSIONS, top, "one table with a timestamp whose key "
                                     "the labels and features tables also have", profiles)]
    if FEATURES not in parts:
        key = profiles[parts[IMPRESSIONS][0]].key_column
        wide = sorted((t for t in free() if key in profiles[t].names),
                      key=lambda t: -len(profiles[t].columns))
        if len(wide) > 1 and len(profiles[wide[0]].columns) > len(profiles[wide[1]].columns):
            wide = wide[:1]
        parts[FEATURES] = [_one(FEATURES, wide, "two tables with nearly the same columns "
                                  f"(offline, online) or one table with the key {key!r}", profiles)]
    return parts


def _days_between(engine: Engine, later: sa.ColumnElement, earlier: sa.ColumnElement):
    if engine.dialect.name == "sqlite":
        return sa.func.julianday(later) - sa.func.julianday(earlier)
    return sa.func.extract("epoch", later - earlier) / 86400.0


def _p99_days(histogram: Sequence[tuple[int, int]]) -> int | None:
    total = sum(n for _, n in histogram)
    seen = 0
    for bucket, n in sorted(histogram):
        seen += n
        if seen >= 0.99 * total:
            return min(90, max(1, int(bucket) + 1))
    return None


def maturity_windows(engine: Engine, labels: TableProfile, impressions: TableProfile,
                     event_time: str) -> dict[str, dict]:
    """Task -> ``{days, countsFrom}``, in the order of decreasing positive counts.

    ``days`` is the 99th percentile of (landed - the impression's ``event_time``) in whole days,
    rounded up (at least 1, at most 90), counted in the database as a histogram of whole days.
    """
    pairs = label_pairs(labels)
    lab = sa.Table(labels.table, sa.MetaData(), autoload_with=engine)
    imp = sa.Table(impressions.table, sa.MetaData(), autoload_with=engine)
    lkey = impressions.key_column if impressions.key_column in lab.c else labels.key_column
    join = lab.join(imp, lab.c[lkey] == imp.c[impressions.key_column])
    where = []
    if labels.partition_column and labels.partitions_total > len(labels.partition_rows):
        where.append(lab.c[labels.partition_column] >= labels.partition_rows[0][0])
    positives = {t: labels.column(ev).rows - labels.column(ev).nulls for t, (ev, _) in pairs.items()}
    out: dict[str, dict] = {}
    with engine.connect() as conn:
        for task in sorted(pairs, key=lambda t: -positives[t]):
            landed = lab.c[pairs[task][1]]
            days = _days_between(engine, landed, imp.c[event_time])
            bucket = (sa.cast(days, sa.Integer) if engine.dialect.name == "sqlite"
                      else sa.func.floor(days))
            rows = conn.execute(sa.select(bucket, sa.func.count()).select_from(join)
                                .where(landed.is_not(None), *where).group_by(bucket)).all()
            out[task] = {"days": _p99_days([(b or 0, n) for b, n in rows]) or 1,
                         "countsFrom": event_time}
    return out


def _event_time(profile: TableProfile) -> str:
    """The impressions timestamp label maturity counts from (``shown_at``, ``event_ts`` ...)."""
    stamps = [c.name for c in profile.columns if c.logical_type == "timestamp"]
    if not stamps:
        raise InitError(f"could not infer the event time of table {profile.table!r} (the "
                        "impressions part): expected a timestamp column (when each impression "
                        "was shown), found none; name another table with --tables "
                        "impressions=TABLE")
    named = [s for s in stamps if _EVENT_NAME.search(s)]
    return (named or stamps)[0]


def _contract_names(parts: Mapping[str, list[str]]) -> dict[str, str]:
    names = {IMPRESSIONS: parts[IMPRESSIONS][0], LABELS: parts[LABELS][0]}
    feats = parts[FEATURES]
    prefix = os.path.commonprefix(feats).rstrip("_") if len(feats) > 1 else ""
    names[FEATURES] = (prefix if len(prefix) >= 3 and prefix not in names.values()
                         else feats[0])
    return names


def _project_url(url: str) -> str:
    """The URL as the project file should hold it: absolute SQLite paths, no password."""
    parsed = sa.engine.make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    if parsed.password:
        text = parsed.set(password="PASSWORDPLACEHOLDER").render_as_string(hide_password=False)
        return text.replace("PASSWORDPLACEHOLDER", "${" + PASSWORD_VAR + "}")
    return parsed.render_as_string(hide_password=False)


def _column_names(engine: Engine, tables: Sequence[str]) -> dict[str, set[str]]:
    """Table -> its column names (empty for a name that is no table or view)."""
    insp = sa.inspect(engine)
    views = set(insp.get_view_names())
    return {t: ({c["name"] for c in insp.get_columns(t)}
                if insp.has_table(t) or t in views else set()) for t in tables}


def _check_named_columns(columns: Mapping[str, set[str]], **given: str | None) -> None:
    """``--key-column`` / ``--partition-column`` must name a column of some considered table.

    Raises:
        InitError: no considered table has the column (the flag would be silently ignored).
    """
    for attr, name in given.items():
        if name is not None and not any(name in names for names in columns.values()):
            flag = "--" + attr.replace("_", "-")
            raise InitError(f"{flag}: expected a column of at least one of tables "
                            f"{sorted(columns)}, found {name!r}")


def _profiles(engine: Engine, columns: Mapping[str, set[str]], explicit: set[str], *,
              partition_column: str | None, key_column: str | None,
              sample_partitions: int | None) -> tuple[dict[str, TableProfile], dict[str, str]]:
    profiles: dict[str, TableProfile] = {}
    skipped: dict[str, str] = {}
    for table, names in columns.items():
        try:
            profiles[table] = profile_table(
                engine, table, sample_partitions=sample_partitions,
                partition_column=partition_column if partition_column in names else None,
                key_column=key_column if key_column in names else None)
        except InputError as exc:
            if table in explicit:
                raise
            skipped[table] = str(exc)
    return profiles, skipped


def init_project(directory: str | os.PathLike, warehouse_url: str, *,
                 tables: Sequence[str] | None = None, parts: Mapping[str, Sequence[str]] | None = None,
                 partition_column: str | None = None, key_column: str | None = None,
                 sample_partitions: int | None = 28, force: bool = False,
                 on: dt.date | None = None) -> list[Path]:
    """Write ``directory/funnelguard.yaml`` and a draft contract per part, from the warehouse.

    Args:
        directory: the project folder (created if needed).
        warehouse_url: the warehouse's SQLAlchemy URL (written to the project file, a password
            replaced by ``${FUNNELGUARD_WAREHOUSE_PASSWORD}``).
        tables: consider only these tables (default: every table and view).
        parts: part -> tables named explicitly (``{"features": ["batch", "served"]}``: offline
            first).
        partition_column, key_column: use these in every table that has them.
        sample_partitions: profile only the latest this many partitions of each table.
        force: overwrite existing files.
        on: the date in the draft markers (default: today, UTC).

    Returns:
        The files written, the project file first.

    Raises:
        InitError: a part that cannot be inferred (which, and how to name it), files that
            exist already (a project file: before anything is profiled), or a
            ``key_column`` / ``partition_column`` that no considered table has; InputError:
            ``directory`` a regular file, a named table that is missing, empty or unsafe.
    """
    from contracts.loader import lint_contract
    from funnelguard.output_paths import expect_folder
    from funnelguard.warehouse import connect

    parts = {p: list(t) for p, t in (parts or {}).items()}
    root = expect_folder("DIR", directory, "a project folder")  # before profiling anything
    if (root / "funnelguard.yaml").exists() and not force:
        raise InitError(f"expected a new project folder, found existing files "
                        f"{[str(root / 'funnelguard.yaml')]}; pass --force to overwrite them")
    engine = connect(warehouse_url)
    try:
        insp = sa.inspect(engine)
        explicit = {t for ts in parts.values() for t in ts} | set(tables or ())
        considered = list(tables or [*insp.get_table_names(), *insp.get_view_names()])
        considered += [t for t in explicit if t not in considered]
        columns = _column_names(engine, considered)
        _check_named_columns(columns, key_column=key_column, partition_column=partition_column)
        profiles, skipped = _profiles(engine, columns, explicit, partition_column=partition_column,
                                      key_column=key_column, sample_partitions=sample_partitions)
        try:
            chosen = guess_parts(profiles, parts)
        except InitError as exc:
            note = "".join(f"; skipped {t}: {why}" for t, why in skipped.items())
            raise InitError(f"{exc}{note}") from None
        for part, ts in chosen.items():
            for t in ts:
                for attr, flag in (("partition_column", "--partition-column"),
                                   ("key_column", "--key-column")):
                    if getattr(profiles[t], attr) is None:
                        what = attr.split("_")[0]
                        raise InitError(f"could not infer the {what} column of table {t!r} (the "
                                        f"{part} part): expected "
                                        + ("a date column with few distinct values"
                                           if what == "partition" else
                                           "a unique, non-null column named like *key* or *_id")
                                        + f"; name it with {flag} COL")
        imps, labs = profiles[chosen[IMPRESSIONS][0]], profiles[chosen[LABELS][0]]
        if not label_pairs(labs):
            raise InitError(f"could not infer the funnel stages of table {labs.table!r} (the "
                            "labels part): expected pairs of timestamps like X_time/X_landed "
                            "or X_at/X_loaded_at; expose them under such names with a view")
        event_time = _event_time(imps)
        maturity = maturity_windows(engine, labs, imps, event_time)
    finally:
        engine.dispose()
    names = _contract_names(chosen)
    stamp = on or dt.datetime.now(dt.UTC).date()
    files: dict[Path, str] = {}
    for part in PARTS:
        envs = dict(zip(("offline", "online"), chosen[part], strict=False))
        group = {env: profiles[t] for env, t in envs.items()}
        doc = draft_document(group, name=names[part], stages=list(maturity),
                             maturity=maturity if part == LABELS else None,
                             segments=part != LABELS)
        header = draft_header(group, stamp)
        if part == LABELS:
            header.append("maturityWindows: stages in order of decreasing positive counts; days = "
                          f"the 99th percentile of landed - {imps.table}.{event_time}, rounded up.")
        files[root / "contracts" / f"{names[part]}.yaml"] = render_contract(doc, header)
    project = root / "funnelguard.yaml"
    files = {project: _project_text(root, names, warehouse_url, stamp), **files}
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        raise InitError(f"expected a new project folder, found existing files {existing}; "
                        "pass --force to overwrite them")
    (root / "contracts").mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    problems = [str(p) for path in list(files)[1:] for p in lint_contract(path)]
    if problems:  # a bug here, not the user's: say so plainly
        raise InputError("the drafted contracts do not lint clean (please report this): "
                         + "; ".join(problems))
    return list(files)


def _project_text(root: Path, names: Mapping[str, str], url: str, on: dt.date) -> str:
    lines = [f"# DRAFT funnelguard project inferred on {on.isoformat()}: review each contract "
             "with its owner (docs/adopting.md).",
             f"name: {_quoted(root.resolve().name)}",
             "contracts:                 # paths relative to this file"]
    lines += [f"  {part}: contracts/{names[part]}.yaml" for part in PARTS]
    lines.append(f"warehouse: {_quoted(_project_url(url))}")
    if PASSWORD_VAR in lines[-1]:
        lines[-1] += f"   # set ${PASSWORD_VAR} in the environment"
    lines.append("# store: sqlite:///.funnelguard/results.db   # results store, relative to this "
                 "file (default: $FUNNELGUARD_STORE, else ./.funnelguard/results.db)")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
