"""Default-value rates computed in the warehouse engine, with the decisions of
:mod:`monitors.default_rate`.

Two ``GROUP BY`` queries over one partition replace reading its rows: the offline table by
every segment column, and the online table paired with the offline table on the contract's key
(a matched online row takes its offline row's segment values, as in
:func:`monitors.default_rate.default_rates`; the first row of a repeated key, in the table's
scan order, takes part), each summing per feature whether the row holds the feature's default.
"Holds the default" is :func:`contracts.spec.is_default_value` in SQL (:func:`default_case`):
numeric fields compare numbers as floats (NULL, NaN and text never match), other fields
compare the text of the value. Each group of the result is one weighted row of a
:class:`~monitors.segments.SegmentRows`, so the per-segment rates and the root cause
(:func:`monitors.segments.find_root_cause`) come from the same code as in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitors import engine_sql as q
from monitors.default_rate import DefaultRate, _rate_of
from monitors.segments import RootCause, SegmentRows, find_root_cause, segment_sums
from monitors.skew import SKEW_ROLES

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract, FieldContract

__all__ = ["default_case", "measured_fields", "grouped_rows", "engine_default_rates"]


def default_case(field: FieldContract, col: str, dialect: str) -> str:
    """1 where ``col`` holds ``field``'s default, else 0 (``is_default_value`` in SQL)."""
    if field.default is None:
        return "0"
    if field.is_numeric:
        try:
            target = float(field.default)
        except (TypeError, ValueError):
            return "0"
        return f"CASE WHEN {q.is_number(col, dialect)} AND {col} = {target!r} THEN 1 ELSE 0 END"
    literal = q.text_literal(str(field.default))
    return f"CASE WHEN {q.as_text(col, dialect)} = {literal} THEN 1 ELSE 0 END"


def measured_fields(contract: Contract, offline: Sequence[str],
                    online: Sequence[str]) -> list[FieldContract]:
    """Fields with a declared default that both tables carry (``offline``/``online``: their
    columns)."""
    return [f for f in contract.fields if f.default is not None and f.role in SKEW_ROLES
            and f.name in offline and f.name in online]


def _grouped_sql(contract: Contract, day: dt.date, fields: Sequence[FieldContract],
                 segments: Sequence[str], online_segments: Sequence[str],
                 dialect: str) -> tuple[str, str]:
    """(offline query, online query): per segment combination, rows and default counts."""
    def col(name: str, alias: str = "") -> str:
        return (alias + "." if alias else "") + q.quote(name, dialect)

    part, key = contract.partition_column, contract.key_column
    where = q.in_partitions(part, day, day, dialect)
    off_t, on_t = (q.quote(contract.table(e), dialect) for e in ("offline", "online"))
    segs = [col(s) for s in segments]
    sums = [f"SUM({default_case(f, col(f.name), dialect)})" for f in fields]
    group = f" GROUP BY {', '.join(segs)}" if segs else ""
    offline = f"SELECT {q.select_list([*segs, 'COUNT(*)', *sums])} FROM {off_t} WHERE {where}{group}"
    loc, k = q.row_locator(dialect, key), col(key)
    # Stack offline keys (with segments) on the online rows; per key, the offline first row's
    # segments go to the online first row (windows over the key, no join).
    off_part = [f"{k} AS fg_key", "0 AS fg_side", f"{loc} AS fg_loc"]
    off_part += [f"{c} AS fg_s{i}" for i, c in enumerate(segs)] + \
        [f"0 AS fg_d{j}" for j in range(len(fields))]
    on_part = [f"{k} AS fg_key", "1 AS fg_side", f"{loc} AS fg_loc"]
    on_part += [f"{col(s) if s in online_segments else 'NULL'} AS fg_s{i}"
                for i, s in enumerate(segments)]
    on_part += [f"{default_case(f, col(f.name), dialect)} AS fg_d{j}" for j, f in enumerate(fields)]
    stacked = (f"SELECT {', '.join(off_part)} FROM {off_t} WHERE {where} AND {k} IS NOT NULL "
               f"UNION ALL SELECT {', '.join(on_part)} FROM {on_t} WHERE {where}")
    ranked = ("SELECT fg_u.*, ROW_NUMBER() OVER (PARTITION BY fg_key, fg_side ORDER BY fg_loc) "
              "AS fg_rn FROM fg_u")
    firsts = [f"MAX(CASE WHEN fg_side = 0 AND fg_rn = 1 THEN fg_s{i} END) OVER (PARTITION BY "
              f"fg_key) AS fg_o{i}" for i in range(len(segments))]
    firsts.append("MAX(1 - fg_side) OVER (PARTITION BY fg_key) AS fg_has")
    labelled = f"SELECT {', '.join(['fg_r.*', *firsts])} FROM fg_r"
    picked = [f"CASE WHEN fg_has = 1 AND fg_rn = 1 THEN fg_o{i} ELSE fg_s{i} END"
              for i in range(len(segments))]
    on_sums = [f"SUM(fg_d{j})" for j in range(len(fields))]
    positions = ", ".join(str(i + 1) for i in range(len(segments)))
    online = (f"WITH {q.cte('fg_u', stacked, dialect)}, fg_r AS ({ranked}), "
              f"fg_l AS ({labelled}) "
              f"SELECT {q.select_list([*picked, 'COUNT(*)', *on_sums])} FROM fg_l "
              f"WHERE fg_side = 1" + (f" GROUP BY {positions}" if segments else ""))
    return offline, online


def grouped_rows(segments: Sequence[str], groups: Sequence[tuple]) -> SegmentRows:
    """``GROUP BY`` results (segment values first) as rows of a :class:`SegmentRows`, codes
    in the order of each segment value's text (NULL is ``None``, as in memory)."""
    import numpy as np

    codes, labels = [], []
    for i in range(len(segments)):
        texts = [str(g[i]) for g in groups]
        names = sorted(set(texts))
        index = {n: c for c, n in enumerate(names)}
        codes.append(np.array([index[t] for t in texts], dtype=np.int64))
        labels.append(tuple(names))
    return SegmentRows(tuple(segments), tuple(codes), tuple(labels))


def _weights(n_off: int, off_groups: Sequence[tuple], on_groups: Sequence[tuple], at: int,
             j: int) -> dict[str, np.ndarray]:
    """Per group (offline groups then online groups): rows and defaults of feature ``j``."""
    import numpy as np

    off_rows = np.array([g[at] for g in off_groups] + [0] * len(on_groups), dtype=np.float64)
    on_rows = np.array([0] * n_off + [g[at] for g in on_groups], dtype=np.float64)
    off_def = np.array([g[at + 1 + j] or 0 for g in off_groups] + [0] * len(on_groups),
                       dtype=np.float64)
    on_def = np.array([0] * n_off + [g[at + 1 + j] or 0 for g in on_groups], dtype=np.float64)
    return {"rows": off_rows + on_rows, "offline_rows": off_rows, "offline_defaults": off_def,
            "online_rows": on_rows, "online_defaults": on_def}


def engine_default_rates(
    engine: Engine,
    contract: Contract,
    partition: dt.date,
    *,
    segments: Sequence[str],
    offline_columns: Sequence[str],
    online_columns: Sequence[str],
    dialect: str | None = None,
) -> tuple[tuple[DefaultRate, ...], dict[str, RootCause]]:
    """:func:`monitors.default_rate.default_rates` and :func:`~monitors.default_rate.
    default_rate_causes` of one partition, computed by the engine.

    Args:
        engine: the warehouse.
        contract: the features contract (defaults, ``max_default_rate``, policies, key).
        partition: the partition.
        segments: the segment columns of the offline table.
        offline_columns, online_columns: the columns each table carries.
        dialect: the SQL dialect (default: the engine's).

    Returns:
        (rates, causes) as the in-memory functions return them; segments of one column are
        listed in the order of their values' text.
    """
    dialect = dialect or q.dialect_of(engine)
    fields = measured_fields(contract, offline_columns, online_columns)
    online_segments = [s for s in segments if s in online_columns]
    off_sql, on_sql = _grouped_sql(contract, partition, fields, segments, online_segments,
                                   dialect)
    off_groups = q.query_rows(engine, off_sql, what=contract.table("offline"))
    on_groups = q.query_rows(engine, on_sql, what=contract.table("online"))
    at = len(segments)
    off_groups = [g for g in off_groups if g[at]]
    on_groups = [g for g in on_groups if g[at]]
    rows = grouped_rows(segments, [*off_groups, *on_groups])
    rates: list[DefaultRate] = []
    causes: dict[str, RootCause] = {}
    for j, field in enumerate(fields):
        weights = _weights(len(off_groups), off_groups, on_groups, at, j)
        tolerance = field.policy("default_rate", contract.default_policy).tolerance
        enforced = bool(field.max_default_rate)
        mine = [DefaultRate(field.name, None, int(weights["offline_defaults"].sum()),
                            int(weights["offline_rows"].sum()),
                            int(weights["online_defaults"].sum()),
                            int(weights["online_rows"].sum()), tolerance=tolerance,
                            max_online=field.max_default_rate.get("online"), enforced=enforced)]
        for i in range(len(rows.columns)):
            for code, sums in enumerate(segment_sums(rows, weights, i)):
                mine.append(_rate_of(field.name, rows.segment(i, code), sums,
                                     tolerance=tolerance, enforced=enforced))
        rates += mine
        if any(r.flagged and r.segment is not None for r in mine):
            def rule(sums, name=field.name, tol=tolerance) -> bool:
                return _rate_of(name, None, sums, tolerance=tol, enforced=True).flagged

            cause = find_root_cause(rows, weights, rule)
            if cause is not None:
                causes[field.name] = cause
    return tuple(rates), causes
