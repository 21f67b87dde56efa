"""Drafting a contract from table profiles: ODCS v3 YAML for an owner to review.

:func:`draft_document` turns one :class:`~contracts.profile.TableProfile` per environment into
an ODCS v3 document shaped like the packaged contracts: ``logicalType`` from the SQL type,
``required`` from the null count, observed ranges (the sentinel excluded), allowed values of
low-cardinality strings, a candidate default with a ``maxDefaultRate`` a bit above the observed
rate, the partition (``partitioned``) and key (``primaryKey``) candidates and a role per column
(key, meta, timestamp, id, category, feature; score and label with a task where the funnel
stages are known). :func:`infer_contract` profiles one table in the database
(:mod:`contracts.profile`) and returns the YAML text, marked as a draft (``status: draft``,
owner ``TODO-owner``, a comment at the top). Personal-looking columns get no observed values in
the file and high-cardinality strings never get an enum.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from sqlalchemy.engine import Engine

from contracts.profile import KEY_NAME, MAX_ENUM_VALUES, ColumnProfile, TableProfile, profile_table
from funnelguard.errors import InputError

__all__ = [
    "DRAFT_OWNER",
    "label_pairs",
    "draft_document",
    "draft_header",
    "render_contract",
    "infer_contract",
]

DRAFT_OWNER = "TODO-owner"
_LANDING = ("loaded_at", "landed_at", "ingested_at", "arrived_at", "landed", "loaded", "ingested",
            "load_ts")
_SCORE_WORDS = frozenset({"score", "pred", "prediction", "prob", "p"})
_EVENT = ("time", "ts", "at", "event_time", "event_ts", "timestamp")


def label_pairs(profile: TableProfile) -> dict[str, tuple[str, str]]:
    """Task -> (event time, landed time): timestamp pairs like ``X_time``/``X_landed``."""
    stamps = [c.name for c in profile.columns if c.logical_type == "timestamp"]
    pairs: dict[str, tuple[str, str]] = {}
    for landed in stamps:
        for suffix in _LANDING:
            if landed.endswith("_" + suffix):
                task = landed[: -len(suffix) - 1]
                events = [f"{task}_{s}" for s in _EVENT] + [task]
                event = next((e for e in events if e in stamps and e != landed), None)
                if task and event and task not in pairs:
                    pairs[task] = (event, landed)
                break
    return pairs


def _nice(value: float, up: bool) -> float | int:
    """Round outwards to 3 significant digits, so the observed value stays inside."""
    if value == 0 or not math.isfinite(value):
        return 0
    scale = 10.0 ** (2 - math.floor(math.log10(abs(value))))
    out = (math.ceil if up else math.floor)(round(value * scale, 6)) / scale
    return int(out) if out == int(out) else round(out, 10)


def _max_default_rate(c: ColumnProfile, partition_rows: Sequence[int]) -> float:
    """A bit above the observed rate: the rate plus 4 binomial standard deviations of a typical
    partition, plus half a point, rounded up to whole percent."""
    rate = c.sentinel_count / max(c.rows, 1)
    n = statistics.median(partition_rows) if partition_rows else c.rows
    spread = 4 * math.sqrt(max(rate, 1 / n) * (1 - rate) / n)
    return min(1.0, math.ceil((rate + spread + 0.005) * 100 - 1e-9) / 100)


def _merge(columns: Sequence[ColumnProfile]) -> ColumnProfile:
    """One column seen in several environments' tables."""
    first = columns[0]
    types = {c.logical_type for c in columns}
    ltype = "number" if types <= {"integer", "number"} and len(types) > 1 else first.logical_type
    lows = [c.minimum for c in columns if c.minimum is not None]
    highs = [c.maximum for c in columns if c.maximum is not None]
    tops: dict[Any, int] = {}
    for c in columns:
        for v, n in c.top_values or ():
            tops[v] = tops.get(v, 0) + n
    best = max(columns, key=lambda c: c.sentinel_count / max(c.rows, 1))
    return ColumnProfile(
        first.name, ltype, sum(c.rows for c in columns), sum(c.nulls for c in columns),
        max(c.distinct for c in columns), min(lows) if lows else None,
        max(highs) if highs else None, sum(c.non_finite for c in columns),
        best.sentinel, best.sentinel_count * sum(c.rows for c in columns) // max(best.rows, 1),
        tuple(sorted(tops.items(), key=lambda vn: -vn[1]))
        if all(c.top_values is not None for c in columns) else None, first.personal)


def _enum(c: ColumnProfile) -> list[Any] | None:
    if c.top_values is None or c.personal:
        return None
    values = [v for v, _ in c.top_values if v != c.sentinel]
    if not values or len(values) > MAX_ENUM_VALUES or 5 * len(values) > c.rows - c.nulls:
        return None
    return sorted(values, key=str)


def _role(c: ColumnProfile, envs: Sequence[str], all_envs: Sequence[str], stages: Sequence[str]
          ) -> tuple[str, str | None]:
    """(role, task) of a column that is neither the key nor the partition."""
    if c.logical_type == "timestamp":
        return "timestamp", None
    if c.logical_type == "date":
        return "meta", None
    tokens = set(c.name.lower().split("_"))
    task = next((s for s in stages if s.lower() in tokens), None)
    logged = list(envs) == ["online"] if len(all_envs) > 1 else bool(tokens & _SCORE_WORDS)
    if (task and logged and c.logical_type == "number" and c.minimum is not None
            and c.minimum >= 0 and c.maximum is not None and c.maximum <= 1):
        return "score", task
    if len(all_envs) > 1 and list(envs) == ["online"]:
        return "meta", None  # serving metadata: the model cannot train on it offline
    if c.logical_type == "string":
        if _enum(c) is not None:
            return ("meta" if len(_enum(c) or ()) == 1 else "category"), None
        return ("category" if c.distinct <= MAX_ENUM_VALUES else "id"), None
    if c.logical_type == "integer" and KEY_NAME.search(c.name) and c.distinct > MAX_ENUM_VALUES:
        return "id", None
    return "feature", None


def _property(c: ColumnProfile, *, key: bool, partition: bool, role: str, task: str | None,
              envs: Sequence[str], all_envs: Sequence[str], partition_rows: Sequence[int],
              repeats: int = 0) -> dict:
    prop: dict[str, Any] = {"name": c.name, "logicalType": c.logical_type,
                            "required": c.nulls == 0}
    notes: list[str] = []
    if key:
        prop.update(primaryKey=True, primaryKeyPosition=1, unique=True)
        if repeats:
            notes.append(f"{repeats} repeated values seen in the sample")
    if partition:
        prop.update(partitioned=True, partitionKeyPosition=1)
    if c.personal and not key:
        prop["classification"] = "pii" if c.logical_type == "string" else "restricted"
        notes.append("the name looks personal: no observed values are written here")
    elif c.is_numeric and role != "key" and c.minimum is not None:
        if role == "score" or (0 <= c.minimum and c.maximum <= 1 and c.logical_type == "number"):
            prop["logicalTypeOptions"] = {"minimum": 0, "maximum": 1}
        elif c.logical_type == "integer":
            prop["logicalTypeOptions"] = {"minimum": int(c.minimum), "maximum": int(c.maximum)}
        else:
            prop["logicalTypeOptions"] = {"minimum": _nice(c.minimum, False),
                                          "maximum": _nice(c.maximum, True)}
    if c.non_finite:
        notes.append(f"{c.non_finite} rows held ±inf/NaN when inferred")
    enum = _enum(c) if role in ("category", "meta") and not key and not partition else None
    if enum is not None:
        prop["enum"] = [{"value": v} for v in enum]
    custom: list[dict] = [{"property": "role", "value": role}]
    if task:
        custom.append({"property": "task", "value": task})
    if list(envs) != list(all_envs):
        custom.append({"property": "environments", "value": list(envs)})
    if c.sentinel is not None and not key and not partition and role not in ("score", "meta"):
        rate = c.sentinel_count / max(c.rows, 1)
        notes.append(f"{rate:.2%} of rows held {c.sentinel!r}, taken as the default (sentinel)")
        custom += [{"property": "default", "value": c.sentinel},
                   {"property": "maxDefaultRate", "value": _max_default_rate(c, partition_rows)}]
        if len(all_envs) > 1:
            custom.append({"property": "checks",
                           "value": {"default_rate": {"tolerance": 0.01, "severity": "error"}}})
    if notes:
        prop["description"] = "Draft: " + "; ".join(notes) + "."
    prop["customProperties"] = custom
    return prop


def _ordered_columns(profiles: Mapping[str, TableProfile]) -> list[str]:
    """Column names: the widest table's order, then any the others add."""
    widest = max(profiles.values(), key=lambda p: len(p.columns))
    names = list(widest.names)
    for p in profiles.values():
        names += [n for n in p.names if n not in names]
    return names


def _common(profiles: Mapping[str, TableProfile], attr: str, what: str) -> str | None:
    """The partition or key column every environment's table shares (the first env's)."""
    first = next(iter(profiles.values()))
    chosen = getattr(first, attr)
    if chosen is None:
        return None
    for env, p in profiles.items():
        if chosen not in p.names:
            raise InputError(f"environment {env!r} (table {p.table!r}) lacks the {what} column "
                             f"{chosen!r} of table {first.table!r}: a contract has one {what} "
                             "column; expose the tables through views with the same name")
    return chosen


def _segments(props: list[dict]) -> list[str]:
    """Up to two low-cardinality categories present in every environment."""
    out = []
    for prop in props:
        custom = {c["property"]: c["value"] for c in prop["customProperties"]}
        if (custom.get("role") == "category" and "environments" not in custom
                and 2 <= len(prop.get("enum") or ()) <= 10):
            out.append(prop["name"])
    return out[:2]


def _is_daily(profile: TableProfile) -> bool:
    days = [v for v, _ in profile.partition_rows]
    try:
        dates = [v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10]) for v in days]
    except ValueError:
        return False
    return len(dates) > 1 and all((b - a).days == 1 for a, b in zip(dates, dates[1:], strict=False))


def draft_document(profiles: Mapping[str, TableProfile], *, name: str,
                   stages: Sequence[str] = (), maturity: Mapping[str, Mapping] | None = None,
                   segments: bool = True) -> dict[str, Any]:
    """An ODCS v3 document (a dict) drafted from one table profile per environment.

    Args:
        profiles: environment (``offline``, ``online``) -> profile of its table.
        name: the contract's ``id`` and ``name``.
        stages: funnel stages: a [0, 1] number named with a stage (``pred_click``) is that
            stage's score.
        maturity: task -> ``{days, countsFrom}``, written as ``maturityWindows`` (labels).
        segments: propose up to two low-cardinality categories as ``segments``.

    Raises:
        InputError: the environments' tables do not share the partition or key column.
    """
    all_envs = list(profiles)
    part = _common(profiles, "partition_column", "partition")
    key = _common(profiles, "key_column", "key")
    first = next(iter(profiles.values()))
    tasks = {col: (role, task) for task, pair in label_pairs(first).items()
             for col, role in zip(pair, ("label", "timestamp"), strict=True)}
    if maturity:
        tasks = {c: rt for c, rt in tasks.items() if rt[1] in maturity}
    props = []
    for col in _ordered_columns(profiles):
        envs = [e for e, p in profiles.items() if col in p.names]
        c = _merge([profiles[e].column(col) for e in envs])
        if col == key:
            role, task = "key", None
        elif col == part:
            role, task = "meta", None
        elif col in tasks and len(all_envs) == 1:
            role, task = tasks[col]
        else:
            role, task = _role(c, envs, all_envs, stages)
        sizes = [n for e in envs for _, n in profiles[e].partition_rows]
        repeats = sum(p.column(col).rows - p.column(col).nulls - p.column(col).distinct
                      for p in profiles.values() if col in p.names) if col == key else 0
        props.append(_property(c, key=col == key, partition=col == part, role=role, task=task,
                               envs=envs, all_envs=all_envs, partition_rows=sizes,
                               repeats=repeats))
    custom: list[dict] = [{"property": "environments",
                           "value": {e: p.table for e, p in profiles.items()}}]
    if segments and _segments(props):
        custom.append({"property": "segments", "value": _segments(props)})
    if maturity:
        custom.append({"property": "maturityWindows", "value": {t: dict(w) for t, w in
                                                                maturity.items()}})
    tables = ", ".join(f"{p.table} ({e})" for e, p in profiles.items())
    doc: dict[str, Any] = {
        "apiVersion": "v3.1.0", "kind": "DataContract", "id": name, "name": name,
        "version": "0.1.0", "status": "draft",
        "description": {"purpose": f"DRAFT inferred from {tables}: say what this dataset is "
                                   "for and who reads it."},
        "team": {"name": DRAFT_OWNER,
                 "description": "TODO: the owning team; add its customProperties slack and "
                                "slackChannel so alerts reach it (docs/contracts.md).",
                 "members": [{"username": "TODO-oncall", "role": "owner"}]},
    }
    if part and _is_daily(first):
        doc["slaProperties"] = [{"property": "frequency", "value": 1, "unit": "d"}]
    doc["customProperties"] = custom
    doc["schema"] = [{"name": name, "physicalType": "table", "properties": props}]
    return doc


def draft_header(profiles: Mapping[str, TableProfile], on: dt.date) -> list[str]:
    """The comment lines at the top of a draft: the marker, what was sampled, what is missing."""
    tables = ", ".join(f"{p.table}" for p in profiles.values())
    lines = [f"DRAFT inferred by funnelguard on {on.isoformat()} from {tables}: review every "
             "value and set the owner."]
    for env, p in profiles.items():
        parts = p.partition_rows
        span = (f" in the latest {len(parts)} of {p.partitions_total} partitions "
                f"({parts[0][0]} .. {parts[-1][0]})" if parts else "")
        lines.append(f"{env}: {p.table}, statistics over {sum(n for _, n in parts) or p.rows} "
                     f"rows{span}.")
        if p.partition_column is None:
            lines.append(f"  no partition column found in {p.table}: mark the date column that "
                         "partitions it with `partitioned: true`.")
        if p.key_column is None:
            lines.append(f"  no key column found in {p.table}: mark the unique key with "
                         "`primaryKey: true` and `unique: true`.")
    lines.append("Ranges, allowed values, defaults and maxDefaultRate are what was observed, not "
                 "what is right; set status: active once reviewed.")
    return lines


class _Dumper(yaml.SafeDumper):
    """Block style like the packaged contracts; short mappings and scalar lists on one line."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _short(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, (str, int, float)) and len(str(v)) <= 30 for v in value)
    return value is None or isinstance(value, (int, float, bool)) or (
        isinstance(value, str) and len(value) <= 40)


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    flow = len(data) <= 4 and all(_short(v) for v in data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_short(data))


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def render_contract(doc: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """YAML text of a contract document, with ``header`` lines as comments at the top."""
    body = yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return "".join(f"# {line}\n" for line in header) + body


def infer_contract(engine: Engine, table: str, *, name: str | None = None,
                   partition_column: str | None = None, key_column: str | None = None,
                   environments: Mapping[str, str] | None = None,
                   sample_partitions: int | None = 28, stages: Sequence[str] = (),
                   on: dt.date | None = None) -> str:
    """Draft a contract for ``table`` (or one table per environment) from the warehouse.

    Args:
        engine: the warehouse.
        table: the table (the offline one when ``environments`` is given).
        name: the contract's name (default: the table's).
        partition_column, key_column: use these instead of inferring them.
        environments: environment -> table (default ``{"offline": table}``).
        sample_partitions: profile the latest this many partitions (None: every row).
        stages: funnel stages, to recognise score columns (``pred_click``).
        on: the date written in the draft marker (default: today, UTC).

    Returns:
        ODCS v3 YAML text that loads clean with :func:`contracts.loader.load_contract`.

    Raises:
        InputError: no such table, an unsafe name, an empty table, tables that disagree.
    """
    envs = dict(environments or {"offline": table})
    profiles = {env: profile_table(engine, t, partition_column=partition_column,
                                   key_column=key_column, sample_partitions=sample_partitions)
                for env, t in envs.items()}
    doc = draft_document(profiles, name=name or table, stages=stages)
    return render_contract(doc, draft_header(profiles, on or dt.datetime.now(dt.UTC).date()))
