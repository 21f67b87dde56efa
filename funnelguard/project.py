"""A funnelguard project: which contract plays which part, and where the data lives.

A project file (``funnelguard.yaml``) names three contracts — ``impressions`` (the ranked unit:
key, partition, event time, segments), ``features`` (offline and online environments, logged
scores) and ``labels`` (the funnel stages, in order, with maturity windows) — plus an optional
warehouse and results-store URL and defaults. Everything a command needs to know about the
user's tables comes from here: table per environment, partition and key columns, event time,
features (kind, default, range), stages, score and label columns, segments and owners. Nothing
in the product names a table or column of its own.

The project is found by ``--project PATH``, else ``$FUNNELGUARD_PROJECT``, else
``./funnelguard.yaml``, else the packaged demo project (``contracts/funnelguard.yaml``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funnelguard.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract, FieldContract, Owner
    from funnelguard.warehouse import FeatureSpec

__all__ = [
    "PARTS",
    "IMPRESSIONS",
    "FEATURES",
    "LABELS",
    "PROJECT_ENV",
    "PROJECT_FILE",
    "PACKAGED_PROJECT",
    "ProjectError",
    "Project",
    "find_project",
    "load_project",
    "feature_spec",
]

# The parts a project names a contract for (the keys of ``contracts:`` in funnelguard.yaml).
IMPRESSIONS, FEATURES, LABELS = "impressions", "features", "labels"
PARTS: tuple[str, ...] = (IMPRESSIONS, FEATURES, LABELS)
PROJECT_ENV = "FUNNELGUARD_PROJECT"
PROJECT_FILE = "funnelguard.yaml"
PACKAGED_PROJECT = Path(__file__).resolve().parent.parent / "contracts" / PROJECT_FILE
_KNOWN_KEYS = {"contracts", "warehouse", "store", "defaults", "name"}
_DEFAULT_KEYS = {"window_days": int, "model_config": str, "thresholds": str, "output_dir": str,
                 "oracle_table": str}
_PATH_KEYS = {"model_config", "thresholds", "output_dir"}
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ProjectError(InputError):
    """A project that cannot be used; ``problems`` lists every mistake, each with file:line.

    Problems are :class:`contracts.errors.Problem`; they point into the project file, or into
    the contract file whose key does not fit the others (a ``countsFrom``, a score's task).
    """

    def __init__(self, path: str, problems: Sequence[tuple]) -> None:
        from contracts.errors import Problem

        self.path = path
        self.problems = tuple(p if isinstance(p, Problem) else
                              Problem(path, p[0], p[1]) if len(p) == 2 else Problem(*p)
                              for p in problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"project {path}: {len(self.problems)} problem(s):\n{lines}")


def feature_spec(f: FieldContract) -> FeatureSpec:
    """The model's view of a contract feature (kind from role + logicalType)."""
    from funnelguard.warehouse import FeatureSpec

    if f.role == "id":
        kind = "id"
    elif f.role == "category" or f.logical_type in ("string", "boolean"):
        kind = "category"
    elif f.logical_type == "integer":
        kind = "int"
    else:
        kind = "float"
    categories = tuple(str(v) for v in (f.allowed_values or ()) if v != f.default)
    return FeatureSpec(f.name, kind, f.default, f.minimum, f.maximum, categories)


@dataclass(frozen=True)
class Project:
    """A loaded project.

    Attributes:
        path: the project file.
        contracts: part (``impressions``, ``features``, ``labels``) -> its contract.
        warehouse: the warehouse URL the file names (``${VAR}`` expanded), or None.
        store: the results-store URL the file names, or None.
        defaults: optional defaults (``window_days``, ``model_config``, ``thresholds``,
            ``output_dir``; paths resolved against the project file; ``oracle_table``: a
            table of true probabilities ``p_{task}`` by key and partition, which only a
            simulated warehouse has).
        name: the project's name (the file's ``name``, else its folder's).
    """

    path: str
    contracts: Mapping[str, Contract]
    warehouse: str | None = field(default=None, repr=False)
    store: str | None = field(default=None, repr=False)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    # -- parts -------------------------------------------------------------------------------

    @property
    def impressions(self) -> Contract:
        return self.contracts[IMPRESSIONS]

    @property
    def features(self) -> Contract:
        return self.contracts[FEATURES]

    @property
    def labels(self) -> Contract:
        return self.contracts[LABELS]

    @property
    def packaged(self) -> bool:
        return Path(self.path).resolve() == PACKAGED_PROJECT

    def contract(self, dataset: str) -> Contract:
        """A contract by part (``features``) or by contract name (``marketplace_features``).

        Raises:
            InputError: no such part or contract in this project.
        """
        if dataset in self.contracts:
            return self.contracts[dataset]
        for c in self.contracts.values():
            if c.name == dataset:
                return c
        raise InputError(f"expected a part {list(PARTS)} or a contract name "
                         f"{[c.name for c in self.contracts.values()]} of project {self.path}, "
                         f"found {dataset!r}")

    # -- the catalogue -----------------------------------------------------------------------

    @property
    def tasks(self) -> tuple[str, ...]:
        """The funnel stages in funnel order (the labels contract's ``maturityWindows``)."""
        return self.labels.tasks

    @property
    def key_column(self) -> str:
        """The impression key (the impressions contract's primary key)."""
        return self.impressions.key_column

    @property
    def event_time(self) -> str:
        """The impressions column label maturity counts from (``countsFrom``)."""
        return self.labels.maturity_window(self.tasks[0]).counts_from

    @property
    def segments(self) -> tuple[str, ...]:
        """Segments of the feature monitors and of evaluation (features contract, else impressions)."""
        return self.features.segments or self.impressions.segments

    def feature_specs(self, environment: str = "offline") -> tuple[FeatureSpec, ...]:
        """The model's features (roles feature / id / category of the features contract)."""
        return tuple(feature_spec(f) for f in self.features.feature_fields(environment))

    def feature_names(self, environment: str = "offline") -> list[str]:
        return [f.name for f in self.features.feature_fields(environment)]

    @property
    def score_columns(self) -> dict[str, str]:
        """Task -> logged production score column (features contract, role ``score``)."""
        return self.features.score_columns

    @property
    def label_columns(self) -> dict[str, str]:
        """Task -> outcome event-time column (labels contract, role ``label``)."""
        return self.labels.label_columns

    @property
    def loaded_at_columns(self) -> dict[str, str]:
        """Task -> loaded-at column (labels contract, role ``timestamp`` + ``task``)."""
        return self.labels.loaded_at_columns

    def owner_of(self, dataset: str | None, field_name: str | None) -> Owner:
        """Who to alert about ``field_name`` of ``dataset`` (a part or a contract name)."""
        try:
            contract = self.contract(dataset) if dataset else self.features
        except InputError:
            contract = self.features
        return contract.owner_of(field_name)

    # -- reading -----------------------------------------------------------------------------

    def read(self, engine: Engine, dataset: str, environment: str, start: dt.date,
             end: dt.date | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows of ``dataset``'s table for ``environment`` with partition in [start, end]."""
        from funnelguard.warehouse import read_range

        contract = self.contract(dataset)
        return read_range(engine, contract.table(environment), start, end or start, columns,
                          partition_column=contract.partition_column,
                          timestamps=contract.timestamp_columns())

    def describe(self) -> str:
        parts = ", ".join(f"{p}={c.name}" for p, c in self.contracts.items())
        return f"project {self.name} ({self.path}): {parts}; stages {list(self.tasks)}"


# -- finding and loading ---------------------------------------------------------------------


def find_project(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$FUNNELGUARD_PROJECT``, else ``./funnelguard.yaml``, else the packaged one."""
    for candidate, where in ((path, "--project"), (os.environ.get(PROJECT_ENV), PROJECT_ENV)):
        if candidate:
            p = Path(candidate)
            if p.is_dir():
                p = p / PROJECT_FILE
            if not p.is_file():
                raise InputError(f"{where}: expected a project file (funnelguard.yaml), found "
                                 f"no file at {p}")
            return p
    local = Path.cwd() / PROJECT_FILE
    return local if local.is_file() else PACKAGED_PROJECT


def _expand(value: str, line: int | None, problems: list) -> str | None:
    missing = [v for v in _ENV_VAR.findall(value) if v not in os.environ]
    if missing:
        problems.append((line, f"expected environment variable(s) {missing} to be set "
                               "(the URL's ${VAR}), found them unset"))
        return None
    return _ENV_VAR.sub(lambda m: os.environ[m.group(1)], value)


def _relative_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path in a project file is relative to that file, not the shell."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((base / url[len(prefix):]).resolve())
    return url


def load_project(path: str | os.PathLike | None = None) -> Project:
    """Load a project file and its contracts, checked together.

    Raises:
        ProjectError: a bad project file (file:line, which key) or contracts that do not fit
            together (a ``countsFrom`` that is not an impressions timestamp, a score for a stage
            the labels contract does not have ...).
        ContractError: a contract file itself is bad (each problem with file:line).
    """
    from contracts.errors import ContractError, Problem
    from contracts.loader import load_contract
    from contracts.yaml_lines import YamlInputError, describe_yaml, line_of, read_yaml_file

    file = find_project(path)
    shown = str(file)
    try:  # bounded: size, nesting, nodes, aliases (docs/contracts.md "Limits")
        doc, duplicates = read_yaml_file(file, kind="project file")
    except YamlInputError as exc:
        raise ProjectError(shown, [Problem(shown, exc.line, exc.message, exc.hint)]) from None
    problems: list[tuple[int | None, str]] = [(line, f"key `{key}` appears twice")
                                              for line, key in duplicates]
    if not isinstance(doc, dict):
        raise ProjectError(shown, [(1, "expected a mapping with `contracts:` at the top, found "
                                       f"{describe_yaml(doc)}")])
    for key in doc:
        if key not in _KNOWN_KEYS:
            problems.append((line_of(doc, [key]), f"unknown key `{key}`; expected one of "
                                                  f"{sorted(_KNOWN_KEYS)}"))
    parts = doc.get("contracts")
    if not isinstance(parts, dict):
        problems.append((line_of(doc, ["contracts"]) or 1,
                         "expected `contracts:` mapping impressions, features and labels to "
                         f"contract files, found {describe_yaml(parts, empty='none')}"))
        raise ProjectError(shown, problems)
    for part in PARTS:
        if part not in parts:
            problems.append((line_of(doc, ["contracts"]), f"contracts: missing `{part}` "
                                                          "(a contract file path)"))
    contracts: dict[str, Contract] = {}
    contract_errors: list = []
    for part, rel in parts.items():
        line = line_of(doc, ["contracts", part])
        if part not in PARTS:
            problems.append((line, f"contracts: unknown part `{part}`; expected {list(PARTS)}"))
            continue
        if not isinstance(rel, str) or not rel:
            problems.append((line, f"contracts.{part}: expected a contract file path, found {rel!r}"))
            continue
        cpath = Path(rel) if Path(rel).is_absolute() else file.parent / rel
        if not cpath.is_file():
            problems.append((line, f"contracts.{part}: expected a contract file, found no file "
                                   f"at {cpath}"))
            continue
        try:
            contracts[part] = load_contract(cpath)
        except ContractError as exc:
            contract_errors.extend(exc.problems)
    urls: dict[str, str | None] = {}
    for key in ("warehouse", "store"):
        value = doc.get(key)
        if value is None:
            urls[key] = None
        elif not isinstance(value, str):
            problems.append((line_of(doc, [key]), f"{key}: expected a database URL, found {value!r}"))
        else:
            expanded = _expand(value, line_of(doc, [key]), problems)
            urls[key] = _relative_sqlite(expanded, file.parent) if expanded else None
    defaults = _defaults(doc, file, problems, line_of)
    if contract_errors and not problems:
        raise ContractError(contract_errors)
    if problems:  # the project file's problems and its contracts', all at once
        raise ProjectError(shown, [*problems, *contract_errors])
    contracts = _resolve_counts_from(contracts)
    problems += _fit_problems(contracts)
    if problems:
        raise ProjectError(shown, problems)
    name = doc.get("name") if isinstance(doc.get("name"), str) else file.resolve().parent.name
    return Project(path=shown, contracts=contracts, warehouse=urls.get("warehouse"),
                   store=urls.get("store"), defaults=defaults, name=name)


def _defaults(doc: dict, file: Path, problems: list, line_of) -> dict[str, Any]:
    raw = doc.get("defaults") or {}
    if not isinstance(raw, dict):
        problems.append((line_of(doc, ["defaults"]), "defaults: expected a mapping"))
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        line = line_of(doc, ["defaults", key])
        kind = _DEFAULT_KEYS.get(key)
        if kind is None:
            problems.append((line, f"defaults: unknown key `{key}`; expected one of "
                                   f"{sorted(_DEFAULT_KEYS)}"))
        elif not isinstance(value, kind) or isinstance(value, bool):
            problems.append((line, f"defaults.{key}: expected {kind.__name__}, found {value!r}"))
        elif key in _PATH_KEYS:  # paths are relative to the project file
            p = Path(value)
            out[key] = str(p if p.is_absolute() else (file.parent / p))
        else:
            out[key] = value
    return out


def _resolve_counts_from(contracts: dict[str, Contract]) -> dict[str, Contract]:
    """A maturity window without ``countsFrom`` counts from the impressions' only timestamp."""
    import dataclasses

    labels = contracts.get(LABELS)
    stamps = contracts[IMPRESSIONS].timestamp_columns() if IMPRESSIONS in contracts else ()
    if labels is None or len(stamps) != 1 or all(w.counts_from for w in labels.maturity.values()):
        return contracts
    maturity = {t: w if w.counts_from else dataclasses.replace(w, counts_from=stamps[0])
                for t, w in labels.maturity.items()}
    return {**contracts, LABELS: dataclasses.replace(labels, maturity=maturity)}


def _line(contract: Contract, *, field_name: str | None = None, custom: str | None = None,
          rest: Sequence[Any] = ()) -> int | None:
    """The line of a property, or of a contract-level customProperty (and a key below it)."""
    from contracts.yaml_lines import line_of

    raw = contract.raw
    if field_name is not None:
        for i, obj in enumerate(raw.get("schema") or []):
            for j, prop in enumerate(obj.get("properties") or []):
                if isinstance(prop, dict) and prop.get("name") == field_name:
                    return line_of(raw, ["schema", i, "properties", j])
    if custom is not None:
        for i, item in enumerate(raw.get("customProperties") or []):
            if isinstance(item, dict) and item.get("property") == custom:
                return (line_of(raw, ["customProperties", i, "value", *rest])
                        or line_of(raw, ["customProperties", i]))
    return 1


def _fit_problems(contracts: Mapping[str, Contract]) -> list[tuple]:
    """Do the three contracts fit together? Each problem points into the contract file."""
    problems: list[tuple] = []
    imp, feats, labels = contracts[IMPRESSIONS], contracts[FEATURES], contracts[LABELS]
    for part, c in contracts.items():
        for what, attr in (("`partitioned: true`", "partition_column"),
                           ("`primaryKey: true`", "key_column")):
            try:
                getattr(c, attr)
            except KeyError:
                problems.append((c.path, 1, f"contracts.{part}: expected a property with "
                                       f"{what}, found none"))
    if not labels.maturity:
        problems.append((labels.path, 1, "contracts.labels: expected `maturityWindows` "
                               "naming the funnel stages in order, found none"))
    stamps = set(imp.timestamp_columns())
    for task, window in labels.maturity.items():
        if not window.counts_from:
            problems.append((labels.path, _line(labels, custom="maturityWindows", rest=[task]),
                             f"contracts.labels: maturityWindows.{task} has "
                                   "no countsFrom and the impressions contract has "
                                   f"{len(stamps)} timestamps {sorted(stamps)}; name one"))
        elif window.counts_from not in stamps:
            problems.append((labels.path, _line(labels, custom="maturityWindows",
                                                rest=[task, "countsFrom"]),
                             f"contracts.labels: maturityWindows.{task}."
                                   f"countsFrom {window.counts_from!r} is not a timestamp property "
                                   f"of the impressions contract {imp.name} ({imp.path}); its "
                                   f"timestamps are {sorted(stamps)}"))
    if len({w.counts_from for w in labels.maturity.values()}) > 1:
        problems.append((labels.path, _line(labels, custom="maturityWindows"),
                         "contracts.labels: every stage must count from "
                               "the same impressions timestamp, found "
                               f"{sorted({w.counts_from for w in labels.maturity.values()})}"))
    for task in labels.maturity:
        if task not in labels.loaded_at_columns:
            problems.append((labels.path, _line(labels, custom="maturityWindows", rest=[task]),
                             f"contracts.labels: stage {task!r} has no "
                                   "loaded-at column (role timestamp, task "
                                   f"{task!r}); the gate needs when each outcome landed"))
    for task, col in feats.score_columns.items():
        if task not in labels.maturity:
            problems.append((feats.path, _line(feats, field_name=col),
                             f"contracts.features: score column {col!r} is "
                                   f"for stage {task!r}, which the labels contract does not have "
                                   f"(stages {list(labels.maturity)})"))
    if not feats.feature_fields():
        problems.append((feats.path, 1, "contracts.features: expected properties with "
                               "role feature, id or category, found none"))
    for seg in feats.segments:
        if seg not in {f.name for f in feats.fields}:
            problems.append((feats.path, _line(feats, custom="segments"),
                             f"contracts.features: segment {seg!r} is not "
                                   "a property"))
    return problems
