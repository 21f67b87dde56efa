"""The forensic bundle: everything the on-call engineer needs about a stopped training run.

Written by the job when the guard stops training, into ``<out>/forensics/step-XXXXXXX/``::

    bundle.json        step, anomaly kind and exception type, task(s), first non-finite module,
                       the batch's keys (the impressions contract's key column), per-task loss /
                       gradient-norm / probe history, config, seeds, the input scan, the triage
                       (replayed losses, anomaly-mode op names, verdict, evidence), the
                       three-line summary and what was redacted
    batch.parquet      the failing batch's inputs (key, partition, feature columns) and its
                       ``label_{task}`` / ``mask_{task}`` columns, personal data redacted
    actions.json       what the guard did before it stopped (skipped batches, rollbacks) and
                       the stop itself (``model.policy.GuardAction``), also under ``actions``
    replay_state.pt    the training state to replay from (step, weights, optimizers, scaler,
                       guard windows, torch RNG state)

:func:`scan_inputs` checks a batch's raw values against the features contract's ranges,
allowed values and defaults (:func:`feature_ranges`): non-finite numbers, and values outside
the contract that are not the default ("is the default" as :func:`contracts.spec.is_default_value`
defines it).

**Personal data** follows the one policy of :mod:`funnelguard.redaction`: columns a contract
classifies as personal (``FieldContract.pii``: ODCS ``classification`` pii, restricted,
confidential or sensitive) never reach the bundle raw. In ``batch.parquet`` (and in the scan's
examples and keys) a text value becomes ``h:`` plus a keyed hash under the deployment key
(:func:`~funnelguard.redaction.deployment_key`, never written: rows stay comparable across the
bundles of one deployment and cannot be looked up against a list of ids without the key); a
number becomes what the triage needs to know about it: ``nan``, ``+inf``, ``-inf``,
``default``, ``in_contract`` or ``out_of_contract``. A missing value and the default sentinel
are kept as they are, as are the labels and masks.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from funnelguard.redaction import deployment_key, is_personal, keyed_token, number_classes

if TYPE_CHECKING:
    from contracts.spec import Contract
    from funnelguard.warehouse import FeatureSpec

__all__ = ["FeatureRange", "Redactor", "feature_ranges", "scan_inputs", "write_bundle",
           "update_bundle", "label_frame", "BUNDLE_FILE"]

BUNDLE_FILE = "bundle.json"


@dataclass(frozen=True)
class FeatureRange:
    """A feature's legitimate values: range or allowed values, its default, whether personal."""

    name: str
    numeric: bool
    low: float | None
    high: float | None
    allowed: tuple[str, ...] | None
    default: Any
    pii: bool = False

    def is_default(self, values: pd.Series) -> np.ndarray:
        """Vectorised :func:`contracts.spec.is_default_value`: floats for numbers, else text."""
        if self.default is None:
            return np.zeros(len(values), bool)
        if self.numeric:
            try:
                default = float(self.default)
            except (TypeError, ValueError):
                return np.zeros(len(values), bool)
            return values.to_numpy(dtype=np.float64, na_value=np.nan) == default
        return (values.notna() & (values.astype(str) == str(self.default))).to_numpy()


def feature_ranges(source: Contract | Sequence[FeatureSpec],
                   pii: Collection[str] = ()) -> tuple[list[FeatureRange], str]:
    """The features' ranges, and where they came from.

    Args:
        source: the features contract (its properties with role feature, id or category), or
            the model's feature specs (``Project.feature_specs`` / ``FeatureEncoder.features``).
        pii: names of personal columns, added to those the contract classifies.
    """
    if hasattr(source, "feature_fields"):
        c = source
        ranges = [FeatureRange(f.name, f.is_numeric, f.minimum, f.maximum,
                               tuple(map(str, f.allowed_values)) if f.allowed_values else None,
                               f.default, is_personal(c, f.name) or f.name in pii)
                  for f in c.feature_fields()]
        return ranges, f"contract {c.name} ({c.path})"
    ranges = [FeatureRange(s.name, s.kind in ("int", "float"), s.low, s.high,
                           tuple(s.categories) or None if s.kind == "category" else None,
                           s.default, s.name in pii or is_personal(None, s.name))
              for s in source]
    return ranges, "the model's feature specs"


@dataclass
class Redactor:
    """Replaces personal values before anything leaves the process (see the module docstring).

    Args:
        pii: names of the personal columns.
        ranges: the features' ranges (a personal number is replaced by its class).
        key: the keyed hash's key (default: the deployment key).
    """

    pii: frozenset[str]
    ranges: Mapping[str, FeatureRange] = field(default_factory=dict)
    key: bytes = field(default_factory=deployment_key, repr=False)

    def token(self, value: Any) -> str:
        return keyed_token(value, self.key)

    def values(self, name: str, values: pd.Series) -> pd.Series:
        """``values`` of column ``name``, redacted when the column is personal."""
        if name not in self.pii:
            return values
        r = self.ranges.get(name)
        if r is not None and r.numeric:
            return pd.Series(_number_classes(values, r), index=values.index, dtype=object)
        keep = values.isna().to_numpy()
        if r is not None:
            keep |= r.is_default(values)
        out = values.astype(object).copy()
        out[~keep] = [self.token(v) for v in values[~keep]]
        return out

    def frame(self, raw: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``raw`` with every personal column redacted."""
        out = raw.copy()
        for col in out.columns:
            if col in self.pii:
                out[col] = self.values(col, out[col])
        return out

    @property
    def redacted(self) -> list[str]:
        return sorted(self.pii)


def _number_classes(values: pd.Series, r: FeatureRange) -> np.ndarray:
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return number_classes(x, r.low, r.high, r.is_default(values))


def scan_inputs(raw: pd.DataFrame, ranges: Sequence[FeatureRange], *, key: str | None = None,
                redactor: Redactor | None = None) -> dict[str, dict[str, Any]]:
    """Per feature with a problem: non-finite and out-of-contract counts, rows and examples.

    Args:
        raw: the batch's raw rows.
        ranges: the features' ranges (:func:`feature_ranges`).
        key: the key column; the entries then list the bad rows' keys (``keys``).
        redactor: redacts personal examples and keys (None: shown as they are).
    """
    out: dict[str, dict[str, Any]] = {}
    keys = None
    if key is not None and key in raw.columns:
        shown = redactor.values(key, raw[key]) if redactor else raw[key]
        keys = shown.astype(str).to_numpy()
    for r in ranges:
        if r.name not in raw.columns:
            continue
        col = raw[r.name]
        is_default = r.is_default(col)
        if r.numeric:
            x = col.to_numpy(dtype=np.float64, na_value=np.nan)
            nonfinite = ~np.isfinite(x)
            legit = np.isfinite(x) & ~is_default
            outside = np.zeros(len(x), bool)
            if r.low is not None:
                outside |= legit & (x < r.low)
            if r.high is not None:
                outside |= legit & (x > r.high)
            bad = nonfinite | outside
            entry: dict[str, Any] = {
                "non_finite": int(nonfinite.sum()), "nan": int(np.isnan(x).sum()),
                "posinf": int(np.isposinf(x).sum()), "neginf": int(np.isneginf(x).sum()),
                "out_of_contract": int(outside.sum()), "range": [r.low, r.high]}
        else:
            nonnull = col.notna().to_numpy()
            outside = np.zeros(len(col), bool)
            if r.allowed is not None:
                s = col.astype(str).to_numpy()
                outside = nonnull & ~np.isin(s, list(r.allowed)) & ~is_default
            bad = ~nonnull | outside
            entry = {"non_finite": int((~nonnull).sum()), "nan": int((~nonnull).sum()),
                     "posinf": 0, "neginf": 0, "out_of_contract": int(outside.sum()),
                     "allowed": list(r.allowed) if r.allowed else None}
        if bad.any():
            shown = redactor.values(r.name, col) if redactor else col
            entry["rows"] = int(bad.sum())
            entry["examples"] = [str(v) for v in shown[bad][:5]]
            if r.pii:
                entry["redacted"] = True
            if keys is not None:
                entry["keys"] = keys[bad][:20].tolist()
            out[r.name] = entry
    return out


def _history(pairs: Sequence[tuple[int, float]]) -> list[list[Any]]:
    return [[int(s), float(v)] for s, v in pairs]


def label_frame(labels: Any, masks: Any, tasks: Sequence[str]) -> pd.DataFrame:
    """``label_{task}`` (float) and ``mask_{task}`` (bool) columns of a batch's ``B x T``
    label and mask tensors, for ``batch.parquet``."""
    y, m = np.asarray(labels, dtype=np.float64), np.asarray(masks, dtype=bool)
    return pd.DataFrame({**{f"label_{t}": y[:, i] for i, t in enumerate(tasks)},
                         **{f"mask_{t}": m[:, i] for i, t in enumerate(tasks)}})


def write_bundle(folder: Path, *, anomaly: Any, exception: str, raw_batch: pd.DataFrame,
                 state: Any, history: Mapping[str, Any], config: Mapping[str, Any],
                 seeds: Mapping[str, Any], scan: Mapping[str, Any], scan_source: str,
                 context: Mapping[str, Any], key: str | None = None,
                 redactor: Redactor | None = None, labels: pd.DataFrame | None = None,
                 actions: Sequence[Any] = ()) -> Path:
    """Write the bundle files; returns the path of ``bundle.json``.

    Args:
        key: the key column of ``raw_batch`` (its values are listed in ``batch.keys``).
        redactor: redacts personal columns of ``batch.parquet`` and the keys (None: none).
        labels: the batch's label and mask columns (:func:`label_frame`), in ``raw_batch``'s
            row order; written beside the inputs (redacted like them where personal).
        actions: the guard's actions this run (objects with ``to_json()``, or mappings).
    """
    folder.mkdir(parents=True, exist_ok=True)
    batch = raw_batch.reset_index(drop=True)
    if labels is not None:
        batch = pd.concat([batch, labels.reset_index(drop=True)], axis=1)
    shown = redactor.frame(batch) if redactor else batch
    shown.to_parquet(folder / "batch.parquet", index=False)
    done = [a.to_json() if hasattr(a, "to_json") else dict(a) for a in actions]
    (folder / "actions.json").write_text(json.dumps(_plain(done), indent=2, default=str) + "\n")
    replay_file = None
    if state is not None:
        torch.save({"step": state.step, "tensors": state.tensors, "guard": state.guard,
                    "rng": state.rng}, folder / "replay_state.pt")
        replay_file = "replay_state.pt"
    present = [c for c in (redactor.redacted if redactor else ()) if c in raw_batch.columns]
    doc = {
        "step": anomaly.step,
        "anomaly": anomaly.kind,
        "exception": exception,
        "message": anomaly.message,
        "tasks": list(anomaly.tasks),
        "module": anomaly.module,
        "value": anomaly.value,
        "threshold": anomaly.threshold,
        "evidence": dict(anomaly.evidence),
        "batch": {"rows": len(raw_batch), "file": "batch.parquet", "key_column": key,
                  "keys": shown[key].astype(str).tolist()
                  if key is not None and key in shown else []},
        "redacted": {"columns": present,
                     "rule": "personal columns (contract classification): text as h:<keyed "
                             "hash, deployment key not stored>, numbers as their class (nan, "
                             "+inf, -inf, default, in_contract, out_of_contract)"},
        "input_scan": {"source": scan_source, "features": dict(scan)},
        "history": {
            "loss": {t: _history(h) for t, h in history["loss"].items()},
            "grad_norm": _history(history["grad_norm"]),
            "probes": list(history.get("probes", [])),
        },
        "config": dict(config),
        "seeds": dict(seeds),
        "replay_state": {"file": replay_file, "step": getattr(state, "step", None)},
        "actions": done,
        **dict(context),
    }
    path = folder / BUNDLE_FILE
    path.write_text(json.dumps(_plain(doc), indent=2, default=str) + "\n")
    return path


def update_bundle(path: Path, **sections: Any) -> None:
    """Add sections (the triage, the summary) to an existing ``bundle.json``."""
    doc = json.loads(path.read_text())
    doc.update(_plain(sections))
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _plain(value: Any) -> Any:
    """JSON-ready: non-finite floats as strings, tuple keys joined with '|'."""
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {("|".join(k) if isinstance(k, tuple) else str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _plain(value.item())
    return value
