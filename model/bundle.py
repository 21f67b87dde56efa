"""The forensic bundle: everything the on-call engineer needs about a stopped training run.

Written by the job when the guard stops training, into ``<out>/forensics/step-XXXXXXX/``::

    bundle.json        step, anomaly kind and exception type, task(s), first non-finite module,
                       the batch's impression_ids, per-task loss / gradient-norm / probe history,
                       config, seeds, the input scan, the triage (replayed losses, anomaly-mode
                       op names, verdict, evidence) and the three-line summary
    batch.parquet      the failing batch's raw inputs (impression_id, ds, feature columns)
    replay_state.pt    the training state to replay from (step, weights, optimizers, scaler,
                       guard windows, torch RNG state)

:func:`scan_inputs` checks a batch's raw values against the ``ranking_features`` contract's
ranges and allowed values (``funnelguard.warehouse.FEATURES`` when the contract cannot be
loaded): non-finite numbers, and values outside the contract that are not the default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from funnelguard.warehouse import FEATURES

__all__ = ["FeatureRange", "feature_ranges", "scan_inputs", "write_bundle", "update_bundle",
           "BUNDLE_FILE"]

BUNDLE_FILE = "bundle.json"


@dataclass(frozen=True)
class FeatureRange:
    """A feature's legitimate values: range or allowed values, and its default sentinel."""

    name: str
    numeric: bool
    low: float | None
    high: float | None
    allowed: tuple[str, ...] | None
    default: Any


def feature_ranges(contract: str | None = "ranking_features") -> tuple[list[FeatureRange], str]:
    """The ranges from the contract (and where they came from), else from FEATURES."""
    if contract is not None:
        try:
            from contracts import load_contract

            c = load_contract(contract)
            ranges = [FeatureRange(f.name, f.is_numeric, f.minimum, f.maximum,
                                   tuple(map(str, f.allowed_values)) if f.allowed_values else None,
                                   f.default)
                      for f in c.fields if f.role in ("feature", "category", "id")]
            return ranges, f"contract {c.name} ({c.path})"
        except Exception:  # noqa: BLE001 - any contract problem falls back to the warehouse spec
            pass
    return ([FeatureRange(f.name, f.kind in ("int", "float"), f.low, f.high,
                          f.categories or None if f.kind == "category" else None, f.default)
             for f in FEATURES], "funnelguard.warehouse.FEATURES")


def scan_inputs(raw: pd.DataFrame, ranges: Sequence[FeatureRange]) -> dict[str, dict[str, Any]]:
    """Per feature with a problem: non-finite and out-of-contract counts, rows and examples."""
    out: dict[str, dict[str, Any]] = {}
    ids = raw["impression_id"].astype(str).to_numpy() if "impression_id" in raw else None
    for r in ranges:
        if r.name not in raw.columns:
            continue
        col = raw[r.name]
        entry: dict[str, Any] = {}
        if r.numeric:
            x = col.to_numpy(dtype=np.float64, na_value=np.nan)
            nonfinite = ~np.isfinite(x)
            legit = np.isfinite(x) & (x != float(r.default) if r.default is not None else True)
            outside = np.zeros(len(x), bool)
            if r.low is not None:
                outside |= legit & (x < r.low)
            if r.high is not None:
                outside |= legit & (x > r.high)
            bad = nonfinite | outside
            entry = {"non_finite": int(nonfinite.sum()), "nan": int(np.isnan(x).sum()),
                     "posinf": int(np.isposinf(x).sum()), "neginf": int(np.isneginf(x).sum()),
                     "out_of_contract": int(outside.sum()),
                     "range": [r.low, r.high]}
            examples = [str(v) for v in x[bad][:5]]
        else:
            values = col.astype(object)
            nonnull = values.notna().to_numpy()
            outside = np.zeros(len(values), bool)
            if r.allowed is not None:
                s = values.astype(str).to_numpy()
                outside = nonnull & ~np.isin(s, list(r.allowed) + [str(r.default)])
            bad = ~nonnull | outside
            entry = {"non_finite": int((~nonnull).sum()), "nan": int((~nonnull).sum()),
                     "posinf": 0, "neginf": 0, "out_of_contract": int(outside.sum()),
                     "allowed": list(r.allowed) if r.allowed else None}
            examples = [str(v) for v in values[bad][:5]]
        if bad.any():
            entry["rows"] = int(bad.sum())
            entry["examples"] = examples
            if ids is not None:
                entry["impression_ids"] = ids[bad][:20].tolist()
            out[r.name] = entry
    return out


def _history(pairs: Sequence[tuple[int, float]]) -> list[list[Any]]:
    return [[int(s), float(v)] for s, v in pairs]


def write_bundle(folder: Path, *, anomaly: Any, exception: str, raw_batch: pd.DataFrame,
                 state: Any, history: Mapping[str, Any], config: Mapping[str, Any],
                 seeds: Mapping[str, Any], scan: Mapping[str, Any], scan_source: str,
                 context: Mapping[str, Any]) -> Path:
    """Write the bundle files; returns the path of ``bundle.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    raw_batch.reset_index(drop=True).to_parquet(folder / "batch.parquet", index=False)
    replay_file = None
    if state is not None:
        torch.save({"step": state.step, "tensors": state.tensors, "guard": state.guard,
                    "rng": state.rng}, folder / "replay_state.pt")
        replay_file = "replay_state.pt"
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
        "batch": {"rows": len(raw_batch), "file": "batch.parquet",
                  "impression_ids": raw_batch["impression_id"].astype(str).tolist()
                  if "impression_id" in raw_batch else []},
        "input_scan": {"source": scan_source, "features": dict(scan)},
        "history": {
            "loss": {t: _history(h) for t, h in history["loss"].items()},
            "grad_norm": _history(history["grad_norm"]),
            "probes": list(history.get("probes", [])),
        },
        "config": dict(config),
        "seeds": dict(seeds),
        "replay_state": {"file": replay_file, "step": getattr(state, "step", None)},
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
