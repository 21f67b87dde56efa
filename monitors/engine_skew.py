"""Replay skew computed in the warehouse engine, with the decisions of :mod:`monitors.skew`.

The offline and online tables of one partition are paired on the contract's key in SQL (the
first row of a repeated key, in the table's scan order, takes part; NULL keys take none), each
feature's mismatch is a ``CASE`` with the contract's tolerances (:func:`mismatch_case`: numbers
match within ``numeric_tolerance`` or ``relative_tolerance``, whichever is larger, NULL/NaN
matches NULL/NaN, ``inf`` matches ``inf``; other values match exactly), and the matched rows are
counted per segment combination by ``GROUP BY``. Rows reach Python only as the few examples of
each mismatched feature. The result is the same :class:`~monitors.skew.SkewReport` that
:func:`monitors.skew.replay_skew` builds (with an alignment that counts instead of listing
positions), so :func:`monitors.skew.skew_findings` words it unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from monitors import engine_sql as q
from monitors.engine_rates import grouped_rows
from monitors.segments import find_root_cause, segment_sums
from monitors.skew import (
    _SLACK,
    REDACTED,
    SKEW_ROLES,
    FeatureSkew,
    ReplayAlignment,
    SkewReport,
    _skewed,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract, FieldContract

__all__ = ["compared_fields", "mismatch_case", "alignment_sql", "engine_alignment",
           "engine_replay_skew"]


def compared_fields(contract: Contract, offline: Sequence[str],
                    online: Sequence[str]) -> list[FieldContract]:
    """The contract's features, categories and ids that both tables carry."""
    return [f for f in contract.fields if f.role in SKEW_ROLES and f.name in offline
            and f.name in online]


def _numeric(field: FieldContract) -> bool:
    return field.is_numeric and field.role != "category"


def tolerance_of(field: FieldContract) -> tuple[float, float] | None:
    if not _numeric(field):
        return None
    return float(field.numeric_tolerance or 0.0), float(field.relative_tolerance or 0.0)


def mismatch_case(field: FieldContract, a: str, b: str, dialect: str) -> str:
    """1 where offline ``a`` and online ``b`` differ beyond the field's tolerance, else 0
    (:func:`monitors.skew._numeric_match` / ``_exact_match`` in SQL)."""
    tol = tolerance_of(field)
    if tol is None:
        match = f"{a} = {b} OR ({a} IS NULL AND {b} IS NULL)"
    else:
        num_a, num_b = q.is_number(a, dialect), q.is_number(b, dialect)
        big = q.greatest(f"abs({a})", f"abs({b})", dialect)
        limit = q.greatest(q.double(tol[0], dialect), f"{q.double(tol[1], dialect)} * {big}",
                           dialect)
        slack = f"{q.double(_SLACK, dialect)} * {q.greatest(q.double(1.0, dialect), limit, dialect)}"
        match = (f"(NOT {num_a} AND NOT {num_b}) OR ({num_a} AND {num_b} AND {a} = {b}) OR "
                 f"({q.is_finite(a, dialect)} AND {q.is_finite(b, dialect)} AND "
                 f"abs({a} - {b}) <= {limit} + {slack})")
    return f"CASE WHEN {match} THEN 0 ELSE 1 END"


def _tables(contract: Contract, day: dt.date, dialect: str) -> tuple[str, str, str]:
    off_t, on_t = (q.quote(contract.table(e), dialect) for e in ("offline", "online"))
    return off_t, on_t, q.in_partitions(contract.partition_column, day, day, dialect)


def alignment_sql(contract: Contract, day: dt.date, dialect: str) -> str:
    """Rows, non-NULL keys and distinct keys of each side, and distinct keys over both."""
    off_t, on_t, where = _tables(contract, day, dialect)
    k = q.quote(contract.key_column, dialect)

    def counts(t: str) -> list[str]:
        return [f"(SELECT COUNT(*) FROM {t} WHERE {where})",
                f"(SELECT COUNT({k}) FROM {t} WHERE {where})",
                f"(SELECT COUNT(DISTINCT {k}) FROM {t} WHERE {where})"]

    # keys on both sides = distinct offline + distinct online - distinct over both (no join)
    union = (f"(SELECT COUNT(DISTINCT {k}) FROM (SELECT {k} FROM {off_t} WHERE {where} "
             f"UNION ALL SELECT {k} FROM {on_t} WHERE {where}) fg_u)")
    return f"SELECT {q.select_list([*counts(off_t), *counts(on_t), union])}"


def engine_alignment(engine: Engine, contract: Contract, day: dt.date, *,
                     dialect: str | None = None) -> ReplayAlignment:
    """The replay join's counts (:class:`~monitors.skew.ReplayAlignment` without positions)."""
    dialect = dialect or q.dialect_of(engine)
    ((n_off, k_off, d_off, n_on, k_on, d_on, union),) = q.query_rows(
        engine, alignment_sql(contract, day, dialect), what=contract.table("offline"))
    both = d_off + d_on - union
    return ReplayAlignment(
        offline_rows=(), online_rows=(), n_offline=int(n_off), n_online=int(n_on),
        duplicate_offline=int(k_off - d_off), duplicate_online=int(k_on - d_on),
        only_offline=int(d_off - both), only_online=int(d_on - both), key=contract.key_column,
        null_offline=int(n_off - k_off), null_online=int(n_on - k_on), n_matched=int(both))


def _matched_sql(contract: Contract, day: dt.date, fields: Sequence[FieldContract],
                 segments: Sequence[str], dialect: str) -> str:
    """``WITH ... m``: the matched keys with their offline segments, each feature's offline and
    online value (``fg_a``/``fg_b``) and mismatch (``fg_x``), and the online row's locator.

    Both sides are stacked (``UNION ALL``) and grouped by key rather than joined: the plan is
    one sort whatever the table statistics say.
    """
    off_t, on_t, where = _tables(contract, day, dialect)
    key = contract.key_column
    k, loc = q.quote(key, dialect), q.row_locator(dialect, key)
    names = [q.quote(f.name, dialect) for f in fields]
    segs = [q.quote(s, dialect) for s in segments]

    def side(t: str, n: int) -> str:
        cols = [f"{k} AS fg_key", f"{n} AS fg_side", f"{loc} AS fg_loc"]
        cols += [f"{c if n == 0 else 'NULL'} AS fg_s{i}" for i, c in enumerate(segs)]
        cols += [f"{c} AS fg_v{j}" for j, c in enumerate(names)]
        return f"SELECT {', '.join(cols)} FROM {t} WHERE {where} AND {k} IS NOT NULL"

    picked = ["fg_key", "MAX(CASE WHEN fg_side = 1 THEN fg_loc END) AS fg_loc"]
    picked += [f"MAX(CASE WHEN fg_side = 0 THEN fg_s{i} END) AS fg_s{i}" for i in range(len(segs))]
    for j in range(len(fields)):
        picked += [f"MAX(CASE WHEN fg_side = 0 THEN fg_v{j} END) AS fg_a{j}",
                   f"MAX(CASE WHEN fg_side = 1 THEN fg_v{j} END) AS fg_b{j}"]
    cases = [f"{mismatch_case(f, f'fg_a{j}', f'fg_b{j}', dialect)} AS fg_x{j}"
             for j, f in enumerate(fields)]
    ranked = ("SELECT fg_u.*, ROW_NUMBER() OVER (PARTITION BY fg_key, fg_side ORDER BY fg_loc) "
              "AS fg_rn FROM fg_u")
    pairs = (f"SELECT {', '.join(picked)} FROM fg_r WHERE fg_rn = 1 GROUP BY fg_key "
             "HAVING COUNT(*) = 2")
    return (f"WITH {q.cte('fg_u', f'{side(off_t, 0)} UNION ALL {side(on_t, 1)}', dialect)}, "
            f"fg_r AS ({ranked}), {q.cte('fg_p', pairs, dialect)}, "
            f"m AS (SELECT {', '.join(['fg_p.*', *cases])} FROM fg_p) ")


def _example_value(value: Any, numeric: bool, pii: bool) -> Any:
    if pii:
        return REDACTED
    if numeric:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if is_number else None
    return None if value is not None and value != value else value  # NaN -> null


def engine_replay_skew(
    engine: Engine,
    contract: Contract,
    partition: dt.date,
    *,
    segments: Sequence[str],
    offline_columns: Sequence[str],
    online_columns: Sequence[str],
    n_examples: int = 3,
    dialect: str | None = None,
) -> SkewReport:
    """:func:`monitors.skew.replay_skew` of one partition, computed by the engine.

    Args:
        engine: the warehouse.
        contract: the features contract (tables, key, tolerances, roles, PII, policies).
        partition: the partition.
        segments: the segment columns of the offline table (a matched row's segment is its
            offline value).
        offline_columns, online_columns: the columns each table carries.
        n_examples: mismatch examples kept per feature (the first in the online table's order).
        dialect: the SQL dialect (default: the engine's).
    """
    import numpy as np

    dialect = dialect or q.dialect_of(engine)
    alignment = engine_alignment(engine, contract, partition, dialect=dialect)
    fields = compared_fields(contract, offline_columns, online_columns)
    matched = _matched_sql(contract, partition, fields, segments, dialect)
    seg_cols = [f"fg_s{i}" for i in range(len(segments))]
    sums = [f"SUM(fg_x{j})" for j in range(len(fields))]
    group = f" GROUP BY {', '.join(seg_cols)}" if seg_cols else ""
    groups = q.query_rows(engine, f"{matched}SELECT {q.select_list([*seg_cols, 'COUNT(*)', *sums])}"
                                  f" FROM m{group}", what=contract.table("online"))
    at = len(segments)
    groups = [g for g in groups if g[at]]
    rows = grouped_rows(segments, groups)
    counts = np.array([g[at] for g in groups], dtype=np.float64)
    features, by_segment, causes = [], [], {}
    for j, field in enumerate(fields):
        bad = np.array([g[at + 1 + j] or 0 for g in groups], dtype=np.float64)
        tol, numeric = tolerance_of(field), _numeric(field)
        examples: tuple[dict[str, Any], ...] = ()
        if bad.sum() and n_examples > 0:
            found = q.query_rows(engine, f"{matched}SELECT fg_key, fg_a{j}, fg_b{j} FROM m WHERE "
                                         f"fg_x{j} = 1 ORDER BY fg_loc LIMIT {int(n_examples)}",
                                 what=contract.table("online"))
            examples = tuple({alignment.key: key, "offline": _example_value(a, numeric, field.pii),
                              "online": _example_value(b, numeric, field.pii)}
                             for key, a, b in found)
        skew = FeatureSkew(field.name, None, int(counts.sum()), int(bad.sum()), tol, examples)
        features.append(skew)
        if not skew.mismatched:
            continue
        weights = {"rows": counts, "mismatched": bad}
        breakdown = [FeatureSkew(field.name, rows.segment(i, c), int(s["rows"]),
                                 int(s["mismatched"]), tol)
                     for i in range(len(rows.columns))
                     for c, s in enumerate(segment_sums(rows, weights, i)) if s["rows"]]
        by_segment.extend(breakdown)
        tolerance = field.policy("replay_skew", contract.default_policy).tolerance
        if any(s.rate > tolerance for s in breakdown):
            cause = find_root_cause(rows, weights, lambda sums, t=tolerance: _skewed(sums, t))
            if cause is not None:
                causes[field.name] = cause
    features.sort(key=lambda s: (-s.rate, s.feature))
    by_segment.sort(key=lambda s: (s.feature, -s.rate, s.segment))
    return SkewReport(alignment, tuple(features), tuple(by_segment), causes)
