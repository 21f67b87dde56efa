"""Which model scores: a trained model directory, or the model that served the traffic.

``--model DIR`` loads a trained model with :func:`model.load_model`; it scores the project's
stages it has heads for (the project's stages and the model's own, intersected, in funnel
order). ``--model served`` is the model that produced the logged score columns the features
contract declares (role ``score`` + ``task``):

- on the packaged demo project it is the simulator's stand-in production model
  (:class:`~funnelguard.simulator.funnel.ProductionModel`), which can be re-run on any feature
  values (so replay and explain can score the offline features with it too);
- on any other project the served model is known only by its logged scores
  (:class:`LoggedScores`: looked up by key and partition). Evaluation can use them as the model
  or the champion; replay needs a model that can score the offline features and refuses it
  with a clear message; explain shows the logged score beside the features.

Every prediction goes through :meth:`ResolvedScorer.predict`, which applies the downsampling
correction (:func:`model.trainset.correct_downsampled`) when the scorer reports a
``downsample_rate`` below 1, and refuses a scorer that returns the wrong tasks or shapes. A
trained :class:`~model.artifacts.FunnelModel` already returns population-scale probabilities
(``downsample_rate == 1.0``), so nothing is corrected twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from funnelguard.project import FEATURES
from model.evaluation.errors import EvaluationInputError, ModelNotFound

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from funnelguard.project import Project

__all__ = [
    "SERVED",
    "Scorer",
    "ResolvedScorer",
    "LoggedScores",
    "resolve_scorer",
    "version_column",
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
        name: the model directory, or ``served:<version>``.
        serves: True for the model that produced the logged scores.
        model_dir: the directory of a trained model (``None`` otherwise).
        downsample_rate: task -> keep-rate of negatives in its training set (1.0: none).
        tasks: the stages it scores, in funnel order (empty: whatever ``predict`` returns).
        first_stage: the funnel's first stage (whose negatives are the all-negative rows), for
            the downsampling correction of deeper stages.
        rescorable: False when the scorer only knows the scores it logged and cannot be run on
            other feature values (:class:`LoggedScores`).
    """

    scorer: Any
    name: str
    serves: bool = False
    model_dir: Path | None = None
    downsample_rate: Mapping[str, float] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()
    first_stage: str | None = None
    rescorable: bool = True

    def predict(self, frame: pd.DataFrame, tasks: Sequence[str] | None = None
                ) -> dict[str, np.ndarray]:
        """Corrected probabilities per task, float64, one per row of ``frame``.

        Args:
            frame: rows with the feature columns (and key/partition for logged scores).
            tasks: the stages to return (default: :attr:`tasks`, else every one returned).
        """
        from model.trainset import correct_downsampled

        raw = self.scorer.predict(frame)
        tasks = tuple(tasks or self.tasks or raw)
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
            # Outcomes nest, so all-negative training rows are the rows without a first stage.
            first = self.first_stage or tasks[0]
            p_any = np.asarray(raw[first], dtype=np.float64) if first in raw else None
            out = {t: np.asarray(correct_downsampled(p, rates[t], p_any), dtype=np.float64)
                   if rates[t] < 1.0 else p for t, p in out.items()}
        return out


def version_column(project: Project) -> str | None:
    """The online table's model-version column: its first online-only string ``meta`` property."""
    for f in project.features.fields_for("online"):
        if (f.role == "meta" and f.logical_type == "string"
                and "offline" not in f.environments):
            return f.name
    return None


class LoggedScores:
    """The served model known only by the scores it logged (any project but the packaged one).

    ``predict(frame)`` looks the rows up by the features contract's key in its online table
    (the partitions ``frame`` spans, read once and cached); a row the online table does not hold
    scores NaN (counted as unscored, never invented).
    """

    def __init__(self, project: Project, engine: Engine) -> None:
        self.project = project
        self.engine = engine
        contract = project.features
        self.key = contract.key_column
        self.partition = contract.partition_column
        self.columns = {t: c for t, c in contract.score_columns.items() if t in project.tasks}
        self._loaded: pd.DataFrame | None = None
        self._span: tuple[dt.date, dt.date] | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for t in self.project.tasks if t in self.columns)

    def _scores(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        if self._span is None or start < self._span[0] or end > self._span[1]:
            logged = self.project.read(self.engine, FEATURES, "online", start, end,
                                       [self.key, *self.columns.values()])
            self._loaded = logged.drop_duplicates(self.key).set_index(self.key)
            self._span = (start, end)
        return self._loaded

    def predict(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        import pandas as pd

        # The training set names its key as the impressions contract does.
        key = self.key if self.key in frame.columns else self.project.key_column
        missing = [c for c in (key, self.partition) if c not in frame.columns]
        if missing:
            raise EvaluationInputError(
                f"model {SERVED}: the served model of project {self.project.name} is known only "
                f"by its logged scores; looking them up needs columns {missing}, not in the "
                f"rows to score")
        if frame.empty:
            return {t: np.zeros(0) for t in self.tasks}
        days = pd.to_datetime(frame[self.partition]).dt.date
        aligned = self._scores(min(days), max(days)).reindex(frame[key].to_numpy())
        return {t: aligned[c].to_numpy(dtype=np.float64) for t, c in self.columns.items()}


def _downsample_rates(model: Any, tasks: Sequence[str]) -> dict[str, float]:
    """The keep-rate the scorer says a consumer must still correct for (1.0: none).

    A :class:`model.artifacts.FunnelModel` corrects its own scores (``downsample_rate`` is 1.0
    there and the training rate is in ``model.json``), so nothing is corrected twice.
    """
    rate: Any = getattr(model, "downsample_rate", None)
    if rate is None:
        return {}
    if isinstance(rate, Mapping):
        return {str(t): float(r) for t, r in rate.items() if r is not None}
    return {t: float(rate) for t in tasks}


def _stages(project: Project, model_tasks: Sequence[str] | None, name: str, flag: str
            ) -> tuple[str, ...]:
    """The project's stages the model scores, in funnel order."""
    if model_tasks is None:
        return tuple(project.tasks)
    common = tuple(t for t in project.tasks if t in set(model_tasks))
    if not common:
        raise EvaluationInputError(
            f"{flag}: model {name} scores stages {sorted(model_tasks)}; project {project.name} "
            f"has stages {list(project.tasks)}: none in common")
    return common


def _wrap(scorer: Any, project: Project, flag: str) -> ResolvedScorer:
    name = str(getattr(scorer, "name", None) or type(scorer).__name__)
    tasks = _stages(project, getattr(scorer, "tasks", None), name, flag)
    return ResolvedScorer(scorer, name, serves=bool(getattr(scorer, "serves", False)),
                          downsample_rate=_downsample_rates(scorer, tasks), tasks=tasks,
                          first_stage=project.tasks[0])


def resolve_scorer(spec: Any, project: Project, *, engine: Engine | None = None,
                   model_version: str | None = None, flag: str = "--model") -> ResolvedScorer:
    """Turn a ``--model`` value into a scorer for ``project``.

    Args:
        spec: a model directory, ``served``, an object with ``predict(frame)`` (a stand-in
            model of the Python API), or an already resolved scorer.
        project: the project (its stages, score columns; the packaged one has a re-runnable
            served model).
        engine: the warehouse, where the served model's logged scores are read (``served`` on
            a project other than the packaged one).
        model_version: the logged model version of the rows to be scored (for ``served``).
        flag: the flag the value came from, for error messages.

    Raises:
        ModelNotFound: ``spec`` is neither ``served`` nor an existing directory.
        EvaluationInputError: the model and the project have no stage in common, or the
            served model's scores cannot be read.
    """
    if isinstance(spec, ResolvedScorer):
        return spec
    if hasattr(spec, "predict"):
        return _wrap(spec, project, flag)
    spec = str(spec)
    if spec == SERVED:
        return _served(project, engine, model_version, flag)
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
    tasks = _stages(project, getattr(loaded, "tasks", None), str(path), flag)
    return ResolvedScorer(loaded, str(path), serves=False, model_dir=path,
                          downsample_rate=_downsample_rates(loaded, tasks), tasks=tasks,
                          first_stage=project.tasks[0])


def _served(project: Project, engine: Engine | None, model_version: str | None, flag: str
            ) -> ResolvedScorer:
    version = model_version or "unknown"
    logged = tuple(t for t in project.tasks if t in project.score_columns)
    if not logged:
        raise EvaluationInputError(
            f"{flag}: {SERVED!r} is the model whose scores the features contract "
            f"{project.features.name} logs (properties with role score and a task); it declares "
            f"none")
    if project.packaged:
        from funnelguard.simulator.funnel import ProductionModel

        return ResolvedScorer(ProductionModel(version), f"{SERVED}:{version}", serves=True,
                              tasks=logged, first_stage=project.tasks[0])
    if engine is None:
        raise EvaluationInputError(f"{flag}: {SERVED!r} on project {project.name} reads the "
                                   "logged scores from the warehouse; no warehouse given")
    return ResolvedScorer(LoggedScores(project, engine), f"{SERVED}:{version}", serves=True,
                          tasks=logged, first_stage=project.tasks[0], rescorable=False)
