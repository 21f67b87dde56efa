"""What one training step measures for the guard, as small functions of tensors.

:class:`~model.training.Trainer` calls these inside ``step()`` (and the triage through the
trainer while it replays); ``model.guard`` decides on what they return. Each task's known rows,
positives and per-class loss in the batch (:func:`batch_label_stats`) let the guard tell a rare
task's real loss spike from the draw of a few more positives; the per-task gradient probe on the
last shared layer (:func:`task_gradient_probe`) shows one task's gradient swamping or opposing
the others; the global gradient norm over dense and sparse gradients is measured before it is
clipped, in place (:func:`clip_global_grad_norm`); before a checkpoint, the parameter rows that
hold a non-finite value (:func:`non_finite_rows`). :class:`StepStats` is what one step measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from model.guard import BatchLabels

__all__ = ["StepStats", "batch_label_stats", "task_gradient_probe", "clip_global_grad_norm",
           "non_finite_rows"]


@dataclass(frozen=True)
class StepStats:
    """What one step measured (``labels``: each task's counts and per-class losses)."""

    step: int
    losses: dict[str, float]
    grad_norm: float | None = None
    probe: dict[str, Any] | None = None
    scale: float | None = None
    skipped: bool = False
    labels: dict[str, BatchLabels] = field(default_factory=dict)


def batch_label_stats(logits: Mapping[str, torch.Tensor], labels: torch.Tensor,
                      known: torch.Tensor, tasks: Sequence[str]) -> dict[str, BatchLabels]:
    """Each task's known rows, positives and mean BCE per class in one batch.

    Plain BCE in fp32, without the loss config's ``pos_weight`` or focal term: a diagnostic,
    not the objective.

    Args:
        logits: ``{task: B}`` logits of the batch.
        labels: ``B x T`` labels (0 or 1), one column per task in ``tasks`` order.
        known: ``B x T`` bool mask, true where a row's label is known.
        tasks: the task names, in column order.

    Returns:
        ``{task: BatchLabels}``; a class with no rows in the batch has a nan loss.
    """
    with torch.no_grad():
        z = torch.stack([logits[t].detach().float() for t in tasks], 1)  # B x T
        per_row = F.binary_cross_entropy_with_logits(z, labels, reduction="none")
        pos = known & (labels > 0.5)
        neg = known & ~(labels > 0.5)
        n_pos, n_neg = pos.sum(0), neg.sum(0)
        pos_loss = (per_row * pos).sum(0) / n_pos.clamp(min=1)
        neg_loss = (per_row * neg).sum(0) / n_neg.clamp(min=1)
    nan = float("nan")
    return {t: BatchLabels(int(p + n), int(p), nl if n else nan, pl if p else nan)
            for t, p, n, pl, nl in zip(tasks, n_pos.tolist(), n_neg.tolist(),
                                       pos_loss.tolist(), neg_loss.tolist(), strict=True)}


def task_gradient_probe(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float],
                        shared: Sequence[nn.Parameter], tasks: Sequence[str]) -> dict[str, Any]:
    """Per-task gradient norms and pairwise cosines on the last shared layer.

    Args:
        losses: ``{task: scalar}`` losses, their graphs still alive (kept for the backward).
        weights: ``{task: weight}`` the loss weighting applies.
        shared: the last shared layer's parameters.
        tasks: the task names.

    Returns:
        ``{"norms": {task: norm}, "cosines": {(task_a, task_b): cosine}}``; a pair with a zero
        or non-finite norm has no cosine.
    """
    vectors = {}
    for t in tasks:
        grads = torch.autograd.grad(weights[t] * losses[t], shared, retain_graph=True,
                                    allow_unused=True)
        vectors[t] = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten().float()
                                for g, p in zip(grads, shared, strict=True)])
    norms = {t: float(v.norm()) for t, v in vectors.items()}
    cosines = {}
    for i, a in enumerate(tasks):
        for b in tasks[i + 1:]:
            denom = norms[a] * norms[b]
            if denom > 0 and math.isfinite(denom):
                cosines[(a, b)] = float(vectors[a] @ vectors[b]) / denom
    return {"norms": norms, "cosines": cosines}


def clip_global_grad_norm(optimizers: Sequence[torch.optim.Optimizer],
                          tables: Sequence[nn.Embedding], clip: float) -> float:
    """The global norm of every gradient (dense and sparse rows), then clipped to ``clip``.

    Sparse gradients are coalesced in place first: a row looked up twice in the batch is one
    row of the gradient.

    Args:
        optimizers: whose parameter groups hold every trained parameter.
        tables: the embedding tables, whose sparse gradients are scaled by their values.
        clip: the largest global norm kept (0: no clipping); a non-finite norm is not clipped.

    Returns:
        The norm before clipping.
    """
    dense, sparse_sq = [], 0.0
    for opt in optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    p.grad = p.grad.coalesce()
                    sparse_sq += float(p.grad._values().float().pow(2).sum())
                else:
                    dense.append(p)
    dense_norm = float(torch.nn.utils.get_total_norm([p.grad for p in dense])) if dense else 0.0
    total = math.sqrt(dense_norm ** 2 + sparse_sq)
    if clip > 0 and math.isfinite(total) and total > clip:
        coef = clip / (total + 1e-6)
        for p in dense:
            p.grad.mul_(coef)
        for table in tables:
            if table.weight.grad is not None and table.weight.grad.is_sparse:
                table.weight.grad._values().mul_(coef)
    return total


def non_finite_rows(net: nn.Module, limit: int = 100) -> dict[str, list[int]]:
    """Parameter name -> the first ``limit`` rows (first dimension) holding a non-finite value.

    Parameters that are all finite are left out, so an empty dict is a healthy network.
    """
    bad = {}
    for name, p in net.named_parameters():
        finite = torch.isfinite(p.detach())
        if not bool(finite.all()):
            rows = (~finite).reshape(p.shape[0], -1).any(1) if p.dim() > 0 else ~finite
            bad[name] = [int(i) for i in rows.nonzero().flatten()[:limit]]
    return bad
