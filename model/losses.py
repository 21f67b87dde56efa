"""Per-task losses from logits, in fp32, masked where a label is not yet known.

``masked_bce`` is binary cross-entropy with logits averaged over the rows whose label is known
(``mask``), with an optional positive-class weight and focal modulation. ``TaskWeighting``
combines the per-task losses with fixed weights or with learned uncertainty weights
(Kendall, Gal & Cipolla, 2018: ``sum_t exp(-s_t) L_t + s_t``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from model.config import LossConfig

__all__ = ["masked_bce", "TaskWeighting", "task_losses"]


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, *,
               pos_weight: float = 1.0, focal_gamma: float = 0.0) -> torch.Tensor:
    """Mean BCE over the masked rows, computed in fp32.

    Args:
        logits: ``B`` logits (any float dtype; cast to fp32).
        labels: ``B`` 0/1 labels.
        mask: ``B`` bool, True where the label is known.
        pos_weight: weight of the positive class.
        focal_gamma: focal exponent; 0 is plain BCE.

    Returns:
        a scalar; 0 (still attached to the graph) when no label is known.
    """
    z = logits.float()
    y = labels.float()
    m = mask.float()
    weight = torch.tensor(float(pos_weight), dtype=torch.float32) if pos_weight != 1.0 else None
    per_row = F.binary_cross_entropy_with_logits(z, y, pos_weight=weight, reduction="none")
    if focal_gamma > 0:
        # p_t from the unweighted BCE: exp(-bce) is the probability of the true class.
        p_t = torch.exp(-F.binary_cross_entropy_with_logits(z, y, reduction="none"))
        per_row = (1.0 - p_t).pow(focal_gamma) * per_row
    known = m.sum()
    return (per_row * m).sum() / known.clamp(min=1.0)


def task_losses(logits: Mapping[str, torch.Tensor], labels: torch.Tensor, masks: torch.Tensor,
                tasks: Sequence[str], config: LossConfig) -> dict[str, torch.Tensor]:
    """Per-task masked losses.

    Args:
        logits: ``{task: B}`` logits.
        labels: ``B x T`` labels in ``tasks`` order.
        masks: ``B x T`` bool masks.
        tasks: task order of the label columns.
        config: pos_weight and focal settings.
    """
    return {t: masked_bce(logits[t], labels[:, i], masks[:, i],
                          pos_weight=float(config.pos_weight.get(t, 1.0)),
                          focal_gamma=config.focal_gamma)
            for i, t in enumerate(tasks)}


class TaskWeighting(nn.Module):
    """Combine per-task losses into the training objective.

    Args:
        tasks: task names.
        config: ``weighting`` = ``fixed`` (``task_weights``, default 1) or ``uncertainty``
            (one learned log-variance ``s_t`` per task, initialised at 0).

    Call with ``{task: scalar}``; returns a scalar.
    """

    def __init__(self, tasks: Sequence[str], config: LossConfig) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.uncertainty = config.weighting == "uncertainty"
        self.fixed = {t: float(config.task_weights.get(t, 1.0)) for t in self.tasks}
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks))) if self.uncertainty else None

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.log_vars is None:
            return sum(self.fixed[t] * losses[t] for t in self.tasks)  # type: ignore[return-value]
        total = torch.zeros((), dtype=torch.float32)
        for i, t in enumerate(self.tasks):
            s = self.log_vars[i]
            total = total + torch.exp(-s) * losses[t] + s
        return total

    def weights(self) -> dict[str, float]:
        """The current effective weight of each task."""
        if self.log_vars is None:
            return dict(self.fixed)
        return {t: float(torch.exp(-self.log_vars[i]).detach()) for i, t in enumerate(self.tasks)}
