"""Loading a contract: YAML safely with lines, checked strictly, built into a typed Contract.

``load_contract(path_or_name)`` resolves a packaged name (``ranking_features``, ``impressions``,
``labels``) or a path, reads it with ``yaml.safe_load`` semantics within limits (size, nesting,
nodes, aliases: :mod:`contracts.yaml_lines`), collects every problem (ODCS v3 JSON Schema, our
extension schema, and the rules below) and raises one
:class:`~contracts.errors.ContractError` listing them all with file:line; otherwise it parses the
document with the standard's pydantic model and builds a :class:`~contracts.spec.Contract`.
``lint_contract`` returns the problems instead of raising.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from contracts.errors import ContractError, Problem
from contracts.spec import (
    PII_CLASSIFICATIONS,
    CheckPolicy,
    Contract,
    FieldContract,
    MaturityWindow,
    Owner,
)
from contracts.strictness import (
    PROJECT_HINT,
    extension_problems,
    identifier_problems,
    looks_like_project,
    schema_problems,
)
from contracts.yaml_lines import YamlInputError, describe_yaml, line_of, read_yaml_file

__all__ = ["PACKAGED", "SUPPORTED_TYPES", "resolve_contract_path", "load_contract", "lint_contract"]

HERE = Path(__file__).resolve().parent
# The packaged demo project's contracts, loadable by name (``load_contract("labels")``).
def _packaged_names() -> tuple[str, ...]:
    """The contracts the packaged project file names (its other YAML files are not contracts)."""
    doc, _ = read_yaml_file(HERE / "funnelguard.yaml", kind="project file")
    return tuple(sorted(Path(rel).stem for rel in doc["contracts"].values()))


PACKAGED = _packaged_names()
SUPPORTED_TYPES = ("integer", "number", "string", "boolean", "date", "timestamp")
_HOURS_PER_UNIT = {"h": 1.0, "hour": 1.0, "hours": 1.0, "d": 24.0, "day": 24.0, "days": 24.0}
_PY_TYPES = {"integer": (int,), "number": (int, float), "string": (str,), "boolean": (bool,)}


def resolve_contract_path(path_or_name: str | Path) -> Path:
    """The packaged file for a contract name (with or without ``.yaml``), else the path itself."""
    text = str(path_or_name)
    stem = text[:-5] if text.endswith(".yaml") else text
    if stem in PACKAGED and not Path(text).exists():
        return HERE / f"{stem}.yaml"
    return Path(text)


def _parse(path: Path) -> tuple[Any, list[Problem]]:
    shown = str(path)
    if not path.exists():
        return None, [Problem(shown, None, "expected a contract file, found no such file",
                              f"packaged contracts are {', '.join(PACKAGED)}")]
    try:  # bounded: size, nesting, nodes, aliases (docs/contracts.md "Limits")
        doc, duplicates = read_yaml_file(path, kind="contract file")
    except YamlInputError as exc:
        return None, [Problem(shown, exc.line, exc.message, exc.hint)]
    problems = [Problem(shown, line, f"key `{key}` appears twice in the same mapping",
                        "YAML keeps only the last one; remove the other")
                for line, key in duplicates]
    if not isinstance(doc, dict):
        problems.append(Problem(shown, 1, "expected a mapping (an ODCS v3 document) at the top, "
                                f"found {describe_yaml(doc)}"))
        return None, problems
    if looks_like_project(doc):
        problems.append(Problem(shown, 1,
                                "expected a contract file (an ODCS v3 document), found "
                                "what looks like a funnelguard project file (`contracts:` "
                                "at the top)",
                                PROJECT_HINT))
    return doc, problems


def _field_rules(path: str, doc: dict, env_tables: dict, props: list, base: list) -> list[Problem]:
    """Rules JSON Schema cannot express, for each property."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for j, prop in enumerate(props):
        if not isinstance(prop, dict):
            continue
        at = base + [j]
        line = line_of(doc, at)
        name = prop.get("name")
        problems += identifier_problems(path, line_of(doc, at + ["name"]) or line, "property name", name)
        if isinstance(name, str):
            if name in seen:
                problems.append(Problem(path, line, f"property `{name}` is defined twice "
                                        f"(first at line {seen[name]})"))
            seen.setdefault(name, line or 0)
        ltype = prop.get("logicalType")
        if ltype is None:
            problems.append(Problem(path, line, f"property `{name}`: missing `logicalType`",
                                    f"one of {', '.join(SUPPORTED_TYPES)}"))
        elif ltype in ("time", "object", "array", "map", "vector"):  # other values: ODCS reports
            problems.append(Problem(path, line_of(doc, at + ["logicalType"]),
                                    f"property `{name}`: funnelguard cannot check logicalType "
                                    f"{ltype!r}; expected one of {', '.join(SUPPORTED_TYPES)}"))
        opts = prop.get("logicalTypeOptions") or {}
        if isinstance(opts, dict):
            for key in ("exclusiveMinimum", "exclusiveMaximum"):
                if key in opts:
                    problems.append(Problem(path, line_of(doc, at + ["logicalTypeOptions", key]),
                                            f"property `{name}`: `{key}` is not supported",
                                            "use the inclusive `minimum` / `maximum`"))
            lo, hi = opts.get("minimum"), opts.get("maximum")
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
                problems.append(Problem(path, line_of(doc, at + ["logicalTypeOptions"]),
                                        f"property `{name}`: expected minimum <= maximum, found "
                                        f"minimum {lo} > maximum {hi}"))
        custom = {c.get("property"): c.get("value") for c in prop.get("customProperties") or []
                  if isinstance(c, dict)}
        cp_line = line_of(doc, at + ["customProperties"]) or line
        types = _PY_TYPES.get(ltype)
        if "default" in custom and types is not None:
            default = custom["default"]
            if isinstance(default, bool) and ltype != "boolean" or not isinstance(default, types):
                problems.append(Problem(path, cp_line, f"property `{name}`: default {default!r} "
                                        f"is not a {ltype}"))
        if "maxDefaultRate" in custom and "default" not in custom:
            problems.append(Problem(path, cp_line, f"property `{name}`: maxDefaultRate without "
                                    "a default value", "add customProperty `default`"))
        for k, item in enumerate(prop.get("enum") or []):
            value = item.get("value") if isinstance(item, dict) else item
            if types is not None and (not isinstance(value, types) or isinstance(value, bool)
                                      and ltype != "boolean"):
                problems.append(Problem(path, line_of(doc, at + ["enum", k]),
                                        f"property `{name}`: allowed value {value!r} is not a {ltype}"))
        envs = custom.get("environments")
        if isinstance(envs, list):
            for env in envs:
                if isinstance(env, str) and env_tables and env not in env_tables:
                    problems.append(Problem(path, cp_line, f"property `{name}`: environment "
                                            f"{env!r} has no table; the contract's environments "
                                            f"are {sorted(env_tables)}"))
        for k, rule in enumerate(prop.get("quality") or []):
            if isinstance(rule, dict) and rule.get("type", "library") != "text":
                problems.append(Problem(path, line_of(doc, at + ["quality", k]),
                                        f"property `{name}`: quality rule of type "
                                        f"{rule.get('type', 'library')!r} is not executed by funnelguard",
                                        "state it with required/unique/logicalTypeOptions/enum "
                                        "and customProperty `checks`, or use type: text"))
    return problems


def _rules(path: str, doc: dict, ext: dict) -> list[Problem]:
    problems: list[Problem] = []
    schema = doc.get("schema")
    if not isinstance(schema, list) or len(schema) != 1:
        found = len(schema) if isinstance(schema, list) else "none"
        problems.append(Problem(path, line_of(doc, ["schema"]) or 1,
                                f"expected `schema` with exactly one object (the table), found {found}",
                                "one contract per dataset; environments map it to tables"))
    env_tables = ext["contract"].get("environments")
    env_tables = env_tables if isinstance(env_tables, dict) else {}
    for env, table in env_tables.items():
        problems += identifier_problems(path, line_of(ext["contract"], ["environments"]),
                                        f"table of environment {env!r}", table)
    if not isinstance(doc.get("team"), dict) or not doc["team"].get("name"):
        problems.append(Problem(path, line_of(doc, ["team"]) or 1,
                                "expected `team` as an object with a `name` (the owning team)",
                                "team: {name: ranking-data, customProperties: [...]}"))
    for i, sla in enumerate(doc.get("slaProperties") or []):
        if isinstance(sla, dict) and sla.get("property") == "latency":
            if str(sla.get("unit")) not in _HOURS_PER_UNIT or not isinstance(sla.get("value"), (int, float)):
                problems.append(Problem(path, line_of(doc, ["slaProperties", i]),
                                        f"latency SLA: expected a number of h or d, found "
                                        f"{sla.get('value')!r} {sla.get('unit')!r}"))
    names: set[str] = set()
    for i, obj in enumerate(schema if isinstance(schema, list) else []):
        if not isinstance(obj, dict):
            continue
        problems += identifier_problems(path, line_of(doc, ["schema", i, "name"]), "schema name",
                                        obj.get("name"))
        props = obj.get("properties") or []
        names |= {p.get("name") for p in props if isinstance(p, dict)}
        problems += _field_rules(path, doc, env_tables, props, ["schema", i, "properties"])
    problems += _task_rules(path, doc, ext, schema if isinstance(schema, list) else [])
    for seg in ext["contract"].get("segments") or []:
        if isinstance(seg, str) and seg not in names:
            problems.append(Problem(path, line_of(ext["contract"], ["segments"]),
                                    f"segment {seg!r} is not a property of the contract"))
    return problems


def _task_rules(path: str, doc: dict, ext: dict, schema: list) -> list[Problem]:
    """Funnel stages: task-bound roles name a task; a labels contract's stages have columns."""
    problems: list[Problem] = []
    windows = ext["contract"].get("maturityWindows")
    windows = windows if isinstance(windows, dict) else {}
    labelled: set[str] = set()
    for i, obj in enumerate(schema):
        for j, prop in enumerate((obj.get("properties") or []) if isinstance(obj, dict) else []):
            if not isinstance(prop, dict):
                continue
            custom = {c.get("property"): c.get("value") for c in prop.get("customProperties") or []
                      if isinstance(c, dict)}
            role, task = custom.get("role"), custom.get("task")
            line = line_of(doc, ["schema", i, "properties", j]) or 1
            if role in ("label", "score") and not task:
                problems.append(Problem(path, line, f"property `{prop.get('name')}`: role {role!r} "
                                        "needs customProperty `task` (the funnel stage)"))
            if role == "label" and isinstance(task, str):
                labelled.add(task)
                if windows and task not in windows:
                    problems.append(Problem(path, line, f"property `{prop.get('name')}`: task "
                                            f"{task!r} has no maturity window; the stages are "
                                            f"{list(windows)}", "add it to maturityWindows"))
    if windows:
        for task in windows:
            if task not in labelled:
                problems.append(Problem(path, line_of(ext["contract"], ["maturityWindows"]) or 1,
                                        f"maturity window for task {task!r}: expected a property "
                                        f"with role label and task {task!r}, found none"))
    return problems


def lint_contract(path_or_name: str | Path) -> list[Problem]:
    """Every problem of a contract file (empty when it loads)."""
    try:
        load_contract(path_or_name)
    except ContractError as exc:
        return list(exc.problems)
    return []


def load_contract(path_or_name: str | Path) -> Contract:
    """Load and strictly check a contract.

    Args:
        path_or_name: ``ranking_features``, ``impressions``, ``labels`` or a file path.

    Raises:
        ContractError: every problem found, each with file:line and a hint.
    """
    path = resolve_contract_path(path_or_name)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    return _load_cached(path, stamp)


@functools.lru_cache(maxsize=64)
def _load_cached(path: Path, stamp: int | None) -> Contract:
    """Contracts are immutable: one load per (file, modification time)."""
    doc, problems = _parse(path)
    if doc is None:
        raise ContractError(problems)
    shown = str(path)
    problems += schema_problems(shown, doc)
    ext_problems, ext = extension_problems(shown, doc)
    problems += ext_problems
    problems += _rules(shown, doc, ext)
    if problems:
        raise ContractError(problems)
    return _build(shown, doc, ext)


def _owner(team: str, custom: dict) -> Owner:
    return Owner(team=team, slack=tuple(custom.get("slack") or ()),
                 channel=custom.get("slackChannel") or custom.get("channel"))


def _build(path: str, doc: dict, ext: dict) -> Contract:
    from open_data_contract_standard.model import OpenDataContractStandard

    odcs = OpenDataContractStandard.model_validate(doc)
    tables = dict(ext["contract"]["environments"])
    policy = CheckPolicy(**ext["contract"].get("checkPolicy", {}))
    fields = []
    obj = odcs.schema_[0]
    for prop in obj.properties or []:
        custom = {c.property: c.value for c in prop.customProperties or []}
        fields.append(_field(prop, custom, tuple(custom.get("environments") or tables)))
    freshness = None
    for sla in odcs.slaProperties or []:
        if sla.property == "latency":
            freshness = float(sla.value) * _HOURS_PER_UNIT[str(sla.unit)]
    maturity = {task: MaturityWindow(task, float(w["days"]), w.get("countsFrom") or "")
                for task, w in (ext["contract"].get("maturityWindows") or {}).items()}
    return Contract(
        name=odcs.name or obj.name, path=path, version=odcs.version or "",
        owner=_owner(odcs.team.name, ext["team"]), tables=tables, fields=tuple(fields),
        default_policy=policy, maturity=maturity, freshness_hours=freshness,
        segments=tuple(ext["contract"].get("segments") or ()), raw=doc,
    )


def _field(prop: Any, custom: dict, environments: tuple[str, ...]) -> FieldContract:
    opts = prop.logicalTypeOptions or {}
    allowed = tuple(e.value for e in prop.enum) if prop.enum else None
    if custom.get("role"):
        role = custom["role"]
    elif prop.primaryKey:
        role = "key"
    elif allowed is not None:
        role = "category"
    elif prop.logicalType == "timestamp":
        role = "timestamp"
    else:
        role = "feature"
    rate = custom.get("maxDefaultRate")
    if isinstance(rate, (int, float)):
        rate = {env: float(rate) for env in environments}
    owner = custom.get("owner")
    return FieldContract(
        name=prop.name, logical_type=prop.logicalType, role=role,
        required=bool(prop.required), unique=bool(prop.unique or prop.primaryKey),
        minimum=opts.get("minimum"), maximum=opts.get("maximum"), allowed_values=allowed,
        pii=(prop.classification or "").lower() in PII_CLASSIFICATIONS,
        default=custom.get("default"), max_default_rate=dict(rate or {}),
        environments=environments, drift_method=custom.get("driftMethod"),
        drift_threshold=custom.get("driftThreshold"),
        drift_trend=custom.get("driftTrend"),
        numeric_tolerance=custom.get("numericTolerance"),
        relative_tolerance=custom.get("relativeTolerance"),
        checks={k: CheckPolicy(**v) for k, v in (custom.get("checks") or {}).items()},
        owner=Owner(owner["team"], tuple(owner.get("slack") or ()), owner.get("channel"))
        if owner else None,
        task=custom.get("task"), description=(prop.description or "").strip(),
        primary_key=bool(prop.primaryKey), primary_key_position=prop.primaryKeyPosition,
        partitioned=bool(prop.partitioned), partition_position=prop.partitionKeyPosition,
        classification=prop.classification,
    )
