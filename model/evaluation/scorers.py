"""Which model scores: a trained model directory, or the model that served the traffic.

``--model DIR`` loads a trained model with :func:`model.load_model`; ``--model served`` is the
stand-in production model whose scores ``serving_log`` records (the simulator's
:class:`~funnelguard.simulator.funnel.ProductionModel`, version from
``serving_log.model_version``). Every prediction goes through :meth:`ResolvedScorer.predict`,
which applies the downsampling correction (:func:`model.trainset.correct_downsampled`,
``q = p / (p + (1 - p) / w)`` for click) when the scorer reports a ``downsample_rate`` below 1,
and refuses a scorer that returns the wrong tasks or shapes. A trained
:class:`~model.artifacts.FunnelModel` already returns population-scale probabilities (it reads
its training rate from ``model.json`` and reports ``downsample_rate == 1.0``), so nothing is
corrected twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from funnelguard.warehouse import TASKS
from model.evaluation.errors import EvaluationInputError, ModelNotFound

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SERVED",
    "Scorer",
    "ResolvedScorer",
    "resolve_scorer",
]

SERVED = "served"


class Scorer(Protocol):
    """Anything with ``predict(frame) -> {task: probabilities}`` over raw feature columns."""

    def predict(self, frame: pd.DataFrame) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class ResolvedScorer:
    """A scorer with what evaluation needs to know about it.

    Attributes:
        scorer: the object with ``predict(frame)``.
        name: the model directory, or ``served:<model_version>``.
        serves: True for the model that produced ``serving_log.score_*``.
        model_dir: the directory of a trained model (``None`` for the served stand-in).
        downsample_rate: task -> keep-rate of negatives in its training set (1.0: none).
    """

    scorer: Any
    name: str
    serves: bool = False
    model_dir: Path | None = None
    downsample_rate: Mapping[str, float] = field(default_factory=dict)

    def predict(self, frame: pd.DataFrame, tasks: tuple[str, ...] = TASKS) -> dict[str, np.ndarray]:
        """Corrected probabilities per task, float64, one per row of ``frame``."""
        from model.trainset import correct_downsampled

        raw = self.scorer.predict(frame)
        out: dict[str, np.ndarray] = {}
        for task in tasks:
            if task not in raw:
                raise EvaluationInputError(
                    f"model {self.name}: expected predict() to return task {task!r}, "
                    f"found tasks {sorted(raw)}")
            p = np.asarray(raw[task], dtype=np.float64).reshape(-1)
            if len(p) != len(frame):
                raise EvaluationInputError(
                    f"model {self.name}: expected {len(frame)} {task} scores, found {len(p)}")
            out[task] = p
        rates = {t: float(self.downsample_rate.get(t, 1.0)) for t in tasks}
        if any(r < 1.0 for r in rates.values()):
            # Outcomes nest, so all-negative training rows are the rows without a click.
            p_any = np.asarray(raw["click"], dtype=np.float64) if "click" in raw else None
            out = {t: np.asarray(correct_downsampled(p, rates[t], p_any), dtype=np.float64)
                   if rates[t] < 1.0 else p for t, p in out.items()}
        return out


def _downsample_rates(model: Any) -> dict[str, float]:
    """The keep-rate the scorer says a consumer must still correct for (1.0: none).

    A :class:`model.artifacts.FunnelModel` corrects its own scores (``downsample_rate`` is 1.0
    there and the training rate is in ``model.json``), so nothing is corrected twice.
    """
    rate: Any = getattr(model, "downsample_rate", None)
    if rate is None:
        return {}
    if isinstance(rate, Mapping):
        return {str(t): float(r) for t, r in rate.items() if r is not None}
    return {t: float(rate) for t in TASKS}


def resolve_scorer(spec: str, *, model_version: str | None = None, flag: str = "--model"
                   ) -> ResolvedScorer:
    """Turn a ``--model`` value into a scorer.

    Args:
        spec: a model directory, or ``served`` for the stand-in production model.
        model_version: ``serving_log.model_version`` of the rows to be scored (for ``served``).
        flag: the flag the value came from, for error messages.

    Raises:
        ModelNotFound: ``spec`` is neither ``served`` nor an existing directory.
    """
    if spec == SERVED:
        from funnelguard.simulator.funnel import ProductionModel

        version = model_version or "unknown"
        return ResolvedScorer(ProductionModel(version), f"{SERVED}:{version}", serves=True)
    path = Path(spec)
    if not path.is_dir():
        raise ModelNotFound(
            f"{flag}: expected a model directory (written by `funnelguard train --out DIR`) "
            f"or {SERVED!r} for the model that served the traffic; found no directory at {spec}")
    try:
        from model import load_model
    except ImportError as exc:
        raise ModelNotFound(f"{flag}: cannot load {spec}: model.load_model is unavailable "
                            f"({exc})") from exc
    loaded = load_model(path)
    return ResolvedScorer(loaded, str(path), serves=False, model_dir=path,
                          downsample_rate=_downsample_rates(loaded))
