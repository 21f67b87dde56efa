"""The limits evaluation and replay findings are held to, as data (``--thresholds PATH``).

A thresholds file (YAML or JSON) overrides the defaults key by key; per-task keys name the
project's funnel stages (the labels contract's ``maturityWindows``)::

    evaluation:
      auc_floor: {click: 0.62, funded: 0.70}
      calibration_band: [0.8, 1.25]
      champion_auc_tolerance: {click: 0.005}
      champion_ne_tolerance: {click: 0.01}
      oracle_gap: 0.01
      min_positives: 30
    replay:
      logged_tolerance: 1.0e-6
      skew_relative_mad: 0.05
      rank_k: 1
      rank_moved_share: 0.05
      contributor_share: 0.1

Unknown keys and stages are refused with the file and the key, so a misspelled threshold never
silently falls back to its default. A stage a mapping does not name gets the default for its
position in the funnel (:func:`stage_defaults`): the first stage's AUC floor is 0.60 and every
later one's 0.65; the champion AUC tolerance is 0.005 for the first stage, 0.01 for the second
and 0.02 below; the normalized-entropy tolerance is 0.02 everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.evaluation.errors import ThresholdsError

__all__ = ["EvaluationThresholds", "ReplayThresholds", "load_thresholds", "stage_defaults"]

# Defaults by position in the funnel: (first stage, second stage, every later stage).
_POSITIONAL: Mapping[str, tuple[float, float, float]] = {
    "auc_floor": (0.60, 0.65, 0.65),
    "champion_auc_tolerance": (0.005, 0.01, 0.02),
    "champion_ne_tolerance": (0.02, 0.02, 0.02),
}


def stage_defaults(key: str, tasks: Sequence[str]) -> dict[str, float]:
    """The default of a per-task threshold for each stage, by its position in the funnel."""
    first, second, later = _POSITIONAL[key]
    return {t: (first, second, later)[min(i, 2)] for i, t in enumerate(tasks)}


@dataclass(frozen=True)
class EvaluationThresholds:
    """Floors and tolerances of ``funnelguard evaluate``.

    The per-task mappings hold what was set explicitly; :meth:`for_tasks` completes them with
    the positional defaults of the stages being evaluated.

    Attributes:
        auc_floor: task -> lowest acceptable AUC (error overall, warning per segment).
        calibration_band: ``(low, high)`` for ``sum(p) / sum(y)``; a slice fails when its value
            and its whole confidence interval lie outside the band.
        champion_auc_tolerance: task -> largest acceptable AUC drop against the champion.
        champion_ne_tolerance: task -> largest acceptable normalized-entropy rise.
        oracle_gap: AUC gap to the simulator's oracle above which a warning is raised.
        min_positives: slices with fewer positives report metrics but get no floor verdict.
    """

    auc_floor: Mapping[str, float] = field(default_factory=dict)
    calibration_band: tuple[float, float] = (0.8, 1.25)
    champion_auc_tolerance: Mapping[str, float] = field(default_factory=dict)
    champion_ne_tolerance: Mapping[str, float] = field(default_factory=dict)
    oracle_gap: float = 0.01
    min_positives: int = 30

    def for_tasks(self, tasks: Sequence[str]) -> EvaluationThresholds:
        """These thresholds with every stage of ``tasks`` (funnel order) given a value."""
        return dataclasses.replace(self, **{
            key: {**stage_defaults(key, tasks), **getattr(self, key)} for key in _POSITIONAL})


@dataclass(frozen=True)
class ReplayThresholds:
    """Limits of the serving-score replay.

    Attributes:
        logged_tolerance: largest ``|replayed - logged|`` score when the serving model replays
            its own logged features (same data, same model: the same score).
        skew_relative_mad: largest mean ``|online - offline|`` score over the mean offline score.
        rank_k: a rank move of more than ``k`` positions within a request counts as moved.
        rank_moved_share: largest share of impressions whose rank moves by more than ``k``.
        contributor_share: a feature explaining at least this share of the difference is named.
    """

    logged_tolerance: float = 1e-6
    skew_relative_mad: float = 0.05
    rank_k: int = 1
    rank_moved_share: float = 0.05
    contributor_share: float = 0.1


def _merge(cls: type, base: Any, doc: Any, where: str, tasks: tuple[str, ...]) -> Any:
    if not isinstance(doc, Mapping):
        from contracts.yaml_lines import describe_yaml

        raise ThresholdsError(f"{where}: expected a mapping, found {describe_yaml(doc)}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in known:
            raise ThresholdsError(f"{where}: unknown key {key!r}; expected one of {sorted(known)}")
        current = getattr(base, key)
        if isinstance(current, Mapping):
            if not isinstance(value, Mapping) or not set(value) <= set(tasks):
                unknown = sorted(set(value) - set(tasks)) if isinstance(value, Mapping) else None
                raise ThresholdsError(
                    f"{where}.{key}: expected a mapping of the project's stages {list(tasks)} to "
                    f"numbers, found {value!r}" + (f" (unknown stages {unknown})" if unknown else ""))
            try:
                changes[key] = {**current, **{t: float(v) for t, v in value.items()}}
            except (TypeError, ValueError) as exc:
                raise ThresholdsError(f"{where}.{key}: expected numbers, found {value!r}") from exc
        elif isinstance(current, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != len(current):
                raise ThresholdsError(f"{where}.{key}: expected {len(current)} numbers, "
                                      f"found {value!r}")
            changes[key] = tuple(float(v) for v in value)
        else:
            try:
                changes[key] = type(current)(value)
            except (TypeError, ValueError) as exc:
                raise ThresholdsError(f"{where}.{key}: expected a number, found {value!r}") from exc
    return dataclasses.replace(base, **changes)


def load_thresholds(path: str | Path | None, tasks: Sequence[str]
                    ) -> tuple[EvaluationThresholds, ReplayThresholds]:
    """The defaults, overridden by the file at ``path`` (YAML or JSON) when given.

    Args:
        path: the thresholds file, or None for the defaults.
        tasks: the project's funnel stages, in order: per-task keys must name them, and the
            evaluation thresholds come back completed for every one of them.

    Raises:
        ThresholdsError: the file is missing, unparseable, or has an unknown key or stage.
    """
    tasks = tuple(tasks)
    evaluation, replay = EvaluationThresholds(), ReplayThresholds()
    if path is None:
        return evaluation.for_tasks(tasks), replay
    from contracts.yaml_lines import YamlInputError, duplicate_keys_message, read_config_file

    path = Path(path)
    if not path.is_file():
        raise ThresholdsError(f"--thresholds: expected a YAML or JSON file, found nothing at {path}")
    try:  # bounded: size, nesting, nodes, aliases (docs/contracts.md "Limits")
        doc, duplicates = read_config_file(path, kind="thresholds file")
    except YamlInputError as exc:
        raise ThresholdsError(f"cannot read the thresholds: {exc}") from None
    if duplicates:
        raise ThresholdsError(duplicate_keys_message(path, duplicates))
    doc = doc if doc is not None else {}
    if not isinstance(doc, Mapping) or not set(doc) <= {"evaluation", "replay"}:
        raise ThresholdsError(f"{path}: expected top-level keys 'evaluation' and/or 'replay', "
                              f"found {sorted(doc) if isinstance(doc, Mapping) else doc!r}")
    if "evaluation" in doc:
        evaluation = _merge(EvaluationThresholds, evaluation, doc["evaluation"],
                            f"{path}: evaluation", tasks)
    if "replay" in doc:
        replay = _merge(ReplayThresholds, replay, doc["replay"], f"{path}: replay", tasks)
    return evaluation.for_tasks(tasks), replay
