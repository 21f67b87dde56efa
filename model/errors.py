"""Errors of the model package.

Input problems (a bad ``--config``, a model directory that is not one) are
:class:`~funnelguard.errors.InputError` subclasses (exit 2). A training anomaly is not an input
error: the guard raises a :class:`TrainingAnomaly` subclass inside the loop, the job catches it,
writes the forensic bundle and the triage, and returns failing findings (exit 1). Each anomaly
carries the guard's frozen :class:`model.guard.Anomaly` as ``.anomaly``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from funnelguard.errors import InputError

if TYPE_CHECKING:
    from model.guard import Anomaly

__all__ = [
    "ConfigError",
    "ModelDirError",
    "FeatureFrameError",
    "TrainingAnomaly",
    "NonFiniteLoss",
    "LossDivergence",
    "LossSpike",
    "NonFiniteGradient",
    "GradientExplosion",
    "TaskDomination",
    "GradientConflict",
    "ScalerCollapse",
    "NonFiniteParameter",
    "InvalidLabels",
    "OutOfContractInput",
    "ImpossibleLoss",
    "EmbeddingRowExplosion",
    "ANOMALY_TYPES",
]


class ConfigError(InputError):
    """A training config file or mapping is malformed (file, key, expected, found)."""


class ModelDirError(InputError):
    """A directory is not a complete model directory (docs/model.md lists the layout)."""


class FeatureFrameError(InputError):
    """A frame handed to the model lacks feature columns or has the wrong types."""


class TrainingAnomaly(Exception):
    """The guard stopped training. ``kind`` names the check; ``anomaly`` holds the evidence."""

    kind = "anomaly"

    def __init__(self, anomaly: Anomaly) -> None:
        super().__init__(anomaly.message)
        self.anomaly = anomaly


class NonFiniteLoss(TrainingAnomaly):
    """A task's batch loss is NaN or infinite."""

    kind = "non_finite_loss"


class LossDivergence(TrainingAnomaly):
    """A task's batch loss is above the absolute ceiling ``guard.max_task_loss``."""

    kind = "loss_divergence"


class LossSpike(TrainingAnomaly):
    """A task's batch loss is a robust-z outlier against its own recent window."""

    kind = "loss_spike"


class NonFiniteGradient(TrainingAnomaly):
    """The global gradient norm (before clipping) is NaN or infinite."""

    kind = "non_finite_gradient"


class GradientExplosion(TrainingAnomaly):
    """The global gradient norm exploded against its running median or the absolute ceiling."""

    kind = "gradient_explosion"


class TaskDomination(TrainingAnomaly):
    """One task holds nearly all of the gradient on the last shared layer, probe after probe."""

    kind = "task_domination"


class GradientConflict(TrainingAnomaly):
    """Two tasks' gradients on the last shared layer point in opposite directions, persistently."""

    kind = "gradient_conflict"


class ScalerCollapse(TrainingAnomaly):
    """Under fp16 the GradScaler skips too many steps or its scale collapsed."""

    kind = "scaler_collapse"


class NonFiniteParameter(TrainingAnomaly):
    """A parameter or an embedding row is non-finite (checked before each checkpoint)."""

    kind = "non_finite_parameter"


class InvalidLabels(TrainingAnomaly):
    """A batch's labels are not 0 or 1, or a mask says known where the label is missing."""

    kind = "invalid_labels"


class OutOfContractInput(TrainingAnomaly):
    """A batch's finite input lies outside the range the features contract allows."""

    kind = "out_of_contract_input"


class ImpossibleLoss(TrainingAnomaly):
    """A task's BCE is negative, or above what any 0/1 label allows for the batch's logits."""

    kind = "impossible_loss"


class EmbeddingRowExplosion(TrainingAnomaly):
    """One id bucket's embedding-row gradient dwarfs the other rows', probe after probe."""

    kind = "embedding_row_explosion"


ANOMALY_TYPES: dict[str, type[TrainingAnomaly]] = {
    cls.kind: cls
    for cls in (NonFiniteLoss, LossDivergence, LossSpike, NonFiniteGradient, GradientExplosion,
                TaskDomination, GradientConflict, ScalerCollapse, NonFiniteParameter,
                InvalidLabels, OutOfContractInput, ImpossibleLoss, EmbeddingRowExplosion)
}
