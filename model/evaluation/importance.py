"""Permutation feature importance per task on the holdout, stored with the model.

For each feature, its column is shuffled across the holdout rows (one seeded permutation) and
the model re-scores; the importance of the feature for a task is the drop in AUC (and the rise in
log loss) on the rows whose label is known. Written into the model directory's slot
``feature_importance.json`` (docs/model.md) so monitors and alerts can rank a skewed feature by
how much the model relies on it::

    {"method": "permutation", "metric": "auc_drop", "as_of": "2026-10-25", "rows": 9000,
     "seed": 0, "tasks": {"funded": {"baseline": {"auc": 0.86, "log_loss": 0.012},
                                     "features": {"quoted_apr": {"auc_drop": 0.21,
                                                                 "log_loss_rise": 0.004}},
                                     "ranking": ["quoted_apr", ...]}}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.evaluation.metrics import metric_values
from model.evaluation.scorers import ResolvedScorer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FEATURE_IMPORTANCE_FILE", "FeatureImportance", "permutation_importance",
           "write_feature_importance", "read_feature_importance"]

# The slot's name in the model directory layout (model.artifacts.FEATURE_IMPORTANCE_FILE);
# repeated here so reading it never imports torch.
FEATURE_IMPORTANCE_FILE = "feature_importance.json"


@dataclass(frozen=True)
class FeatureImportance:
    """Per task: baseline metrics and each feature's AUC drop / log-loss rise when shuffled."""

    tasks: Mapping[str, Mapping[str, Any]]
    rows: int
    seed: int
    as_of: str | None = None

    def ranking(self, task: str) -> list[str]:
        """Features by decreasing AUC drop for ``task``."""
        return list(self.tasks[task]["ranking"])

    def to_json(self) -> dict[str, Any]:
        return {"method": "permutation", "metric": "auc_drop", "as_of": self.as_of,
                "rows": self.rows, "seed": self.seed,
                "tasks": {t: dict(v) for t, v in self.tasks.items()}}


def _known(frame: pd.DataFrame, task: str, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = frame[f"mask_{task}"].to_numpy(dtype=bool) & np.isfinite(scores)
    return rows, frame[f"label_{task}"].to_numpy(dtype=np.float64)[rows]


def permutation_importance(
    scorer: ResolvedScorer, frame: pd.DataFrame, *, tasks: tuple[str, ...],
    features: list[str], seed: int = 0, as_of: str | None = None,
) -> FeatureImportance:
    """Shuffle each feature once and measure what the model loses, per task.

    Args:
        scorer: the model.
        frame: holdout rows with the feature columns, ``label_{task}`` and ``mask_{task}``.
        tasks: the stages to measure.
        features: the columns to shuffle (the project's features, in contract order).
        seed: seed of the permutations (one per feature, drawn in feature order).
        as_of: recorded in the result.
    """
    features = list(features)
    rng = np.random.default_rng(seed)
    base_scores = scorer.predict(frame, tasks)
    base = {}
    for t in tasks:
        rows, y = _known(frame, t, base_scores[t])
        base[t] = metric_values(y, base_scores[t][rows], names=("auc", "log_loss"))
    per_task: dict[str, dict[str, dict[str, float | None]]] = {t: {} for t in tasks}
    for name in features:
        shuffled = frame.copy()
        shuffled[name] = frame[name].to_numpy()[rng.permutation(len(frame))]
        scores = scorer.predict(shuffled, tasks)
        for t in tasks:
            rows, y = _known(frame, t, scores[t])
            m = metric_values(y, scores[t][rows], names=("auc", "log_loss"))
            drop = base[t]["auc"] - m["auc"]
            rise = m["log_loss"] - base[t]["log_loss"]
            per_task[t][name] = {"auc_drop": float(drop) if np.isfinite(drop) else None,
                                 "log_loss_rise": float(rise) if np.isfinite(rise) else None}
    out = {}
    for t in tasks:
        ranking = sorted(features, key=lambda f: -(per_task[t][f]["auc_drop"] or 0.0))
        out[t] = {"baseline": {k: (v if np.isfinite(v) else None) for k, v in base[t].items()},
                  "features": per_task[t], "ranking": ranking}
    return FeatureImportance(out, len(frame), seed, as_of)


def write_feature_importance(model_dir: str | Path, importance: FeatureImportance) -> Path:
    """Write ``feature_importance.json`` into the model directory (atomically)."""
    path = Path(model_dir) / FEATURE_IMPORTANCE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(importance.to_json(), indent=2) + "\n")
    tmp.replace(path)
    return path


def read_feature_importance(model_dir: str | Path) -> FeatureImportance | None:
    """The stored importance of a model directory, or None when it has none yet."""
    path = Path(model_dir) / FEATURE_IMPORTANCE_FILE
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return FeatureImportance(doc["tasks"], int(doc.get("rows", 0)), int(doc.get("seed", 0)),
                             doc.get("as_of"))
