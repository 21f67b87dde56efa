"""How often the sampled drift path decides like a full Evidently ``DataDriftPreset`` run.

The monitoring path (:mod:`monitors.drift`) tests bounded samples; this module runs the full
preset on the same frames — every row, Evidently's own column handling, contract methods and
thresholds passed as ``per_column_method`` / ``per_column_threshold`` — reads each column's
decision from the preset's per-column drift tests, and counts identical decisions. The
benchmark (``bench/bench_monitors.py``) and the tests use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitors.drift import DEFAULT_SAMPLE_SIZE, DriftResult, DriftTarget, detect_drift

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FullDecision", "Disagreement", "Agreement", "full_preset_decisions",
           "compare_decisions", "measure_agreement"]


@dataclass(frozen=True)
class FullDecision:
    """One column's verdict from a full ``DataDriftPreset`` run."""

    feature: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class Disagreement:
    """A column where the sampled path and the full run decided differently."""

    comparison: str
    feature: str
    method: str
    sampled_score: float
    full_score: float
    threshold: float
    full_drifted: bool


@dataclass(frozen=True)
class Agreement:
    """Identical per-column decisions over a set of comparisons.

    Attributes:
        decisions: column decisions compared.
        identical: how many were the same.
        drifted: how many the full run called drifted (so a reader sees both kinds were tested).
        disagreements: the ones that differed.
    """

    decisions: int
    identical: int
    drifted: int
    disagreements: tuple[Disagreement, ...] = ()

    @property
    def rate(self) -> float:
        return self.identical / self.decisions if self.decisions else 1.0

    def __add__(self, other: Agreement) -> Agreement:
        return Agreement(self.decisions + other.decisions, self.identical + other.identical,
                         self.drifted + other.drifted, self.disagreements + other.disagreements)


def full_preset_decisions(
    reference: pd.DataFrame, current: pd.DataFrame, targets: Sequence[DriftTarget]
) -> dict[str, FullDecision]:
    """Run Evidently's full ``DataDriftPreset`` and return its per-column decisions."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    features = [t.feature for t in targets]
    definition = DataDefinition(
        numerical_columns=[t.feature for t in targets if t.column_type == "num"],
        categorical_columns=[t.feature for t in targets if t.column_type == "cat"])
    preset = DataDriftPreset(
        columns=features,
        per_column_method={t.feature: t.method for t in targets if t.method} or None,
        per_column_threshold={t.feature: t.threshold for t in targets if t.threshold is not None} or None)
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition))
    doc = snapshot.dict()
    scores = {}
    for metric in doc["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = (config.get("method"), float(metric["value"]),
                                        float(config.get("threshold")))
    decisions = {}
    for test in doc["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if test.get("id") != "drift" or "column" not in params:
            continue
        column = params["column"]
        method, score, threshold = scores[column]
        status = getattr(test["status"], "value", test["status"])
        decisions[column] = FullDecision(column, method, score, threshold, status == "FAIL")
    return decisions


def compare_decisions(comparison: str, sampled: Iterable[DriftResult],
                      full: Mapping[str, FullDecision]) -> Agreement:
    """Count identical decisions between a sampled run and a full run of one comparison."""
    decisions = identical = drifted = 0
    disagreements = []
    for r in sampled:
        f = full.get(r.feature)
        if f is None:
            continue
        decisions += 1
        drifted += f.drifted
        if r.drifted == f.drifted:
            identical += 1
        else:
            disagreements.append(Disagreement(comparison, r.feature, r.method, r.score, f.score,
                                              r.threshold, f.drifted))
    return Agreement(decisions, identical, drifted, tuple(disagreements))


def measure_agreement(
    comparisons: Iterable[tuple[str, pd.DataFrame, pd.DataFrame]],
    targets: Sequence[DriftTarget],
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> Agreement:
    """Sampled vs full decisions over ``(label, reference, current)`` comparisons."""
    total = Agreement(0, 0, 0)
    features = [t.feature for t in targets]
    for label, reference, current in comparisons:
        sampled = detect_drift(reference, current, targets, "online_vs_offline",
                               sample_size=sample_size, seed=seed)
        full = full_preset_decisions(reference[features], current[features], targets)
        total = total + compare_decisions(label, sampled, full)
    return total
