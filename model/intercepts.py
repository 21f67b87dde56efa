"""Refit each head's output bias so the model's mean prediction matches its training rate.

With an intercept, the minimum of binary cross-entropy satisfies ``sum(p) == sum(y)`` over the
rows that count; a finite run of a stochastic optimizer only approaches that point, and for rare
tasks the last iterate can sit well off it (docs/model.md, "Calibration"). After training,
:func:`refit_intercepts` solves that one condition per task exactly on the known
(``mask_{task}``) training rows, moving only the task head's output bias: rankings are unchanged.
With ESMM the heads model conditional probabilities, so the biases are solved in funnel order
on the chained probability (monotone in each bias once the earlier ones are fixed). Immature rows
never count, even where an early event already set their label to 1.
"""

from __future__ import annotations

import numpy as np
import torch

from model.batches import TrainingTensors
from model.network import FunnelNet

__all__ = ["refit_intercepts", "solve_intercept_shift"]


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def solve_intercept_shift(logits: np.ndarray, positives: float, *,
                          log_prior: np.ndarray | None = None) -> float:
    """The shift ``d`` with ``sum(exp(log_prior + logsigmoid(logits + d))) == positives``.

    Args:
        logits: ``N`` head logits of the rows that count.
        positives: their observed positives (``0 < positives < N``).
        log_prior: ``N`` log-probabilities the head's probability is multiplied by (ESMM:
            the chained probability of the previous task); None for an unconditional head.

    Returns:
        the shift, found by bisection on a monotone function (|d| <= 20).
    """
    prior = np.zeros_like(logits) if log_prior is None else log_prior
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if np.exp(prior + _log_sigmoid(logits + mid)).sum() > positives:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@torch.no_grad()
def refit_intercepts(net: FunnelNet, data: TrainingTensors, *,
                     batch_size: int = 65536) -> dict[str, float]:
    """Shift each head's output bias in place; return the shift per task.

    Args:
        net: the trained network (left in eval mode).
        data: the training rows it was trained on, with labels and masks.
        batch_size: rows per forward pass.

    Returns:
        task -> the bias shift applied (0.0 where the task has no known row, no positive or
        only positives: the condition has no finite solution).
    """
    net.eval()
    chunks: dict[str, list[np.ndarray]] = {t: [] for t in net.tasks}
    for start in range(0, len(data), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(data)))
        for t, z in net.head_logits(data.features.index(rows)).items():
            chunks[t].append(z.double().numpy())
    heads = {t: np.concatenate(v) if v else np.zeros(0) for t, v in chunks.items()}
    labels, masks = data.labels.double().numpy(), data.masks.numpy()
    shifts: dict[str, float] = {}
    log_prior = np.zeros(len(data))
    for task in net.tasks:
        index = data.tasks.index(task)
        known = masks[:, index]
        positives = float(labels[known, index].sum())
        shift = 0.0
        if 0 < positives < int(known.sum()):
            shift = solve_intercept_shift(heads[task][known], positives,
                                          log_prior=log_prior[known] if net.esmm else None)
            net.heads[task].out.bias.add_(shift)
        shifts[task] = float(shift)
        if net.esmm:
            log_prior = log_prior + _log_sigmoid(heads[task] + shift)
    return shifts
