"""What one training step measures for the guard, as small functions of tensors.

:class:`~model.training.Trainer` calls these inside ``step()`` (and the triage through the
trainer while it replays); ``model.guard`` decides on what they return. Each task's known rows,
positives and per-class loss in the batch (:func:`batch_label_stats`) let the guard tell a rare
task's real loss spike from the draw of a few more positives; the per-task gradient probe on the
last shared layer (:func:`task_gradient_probe`) shows one task's gradient swamping or opposing
the others; the global gradient norm over dense and sparse gradients is measured before it is
clipped, in place (:func:`clip_global_grad_norm`), and on probe steps split by parameter group
(:func:`group_grad_norms`: each embedding table, the dense projection, the trunk, each head);
the id tables' row gradients summed between probes (:class:`RowGradientWindow`: the largest
row against the median touched row, naming the table and the hashed bucket); before a
checkpoint, the
parameter rows that hold a non-finite value (:func:`non_finite_rows`). :class:`StepStats` is
what one step measured.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from model.guard import BatchLabels

__all__ = ["StepStats", "batch_label_stats", "task_gradient_probe", "clip_global_grad_norm",
           "non_finite_rows", "parameter_groups", "group_grad_norms", "RowGradientWindow",
           "autocast_for", "first_non_finite_module"]


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
    groups: dict[str, float] | None = None
    rows: dict[str, dict[str, Any]] | None = None


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
        largest = (z.abs() * known).amax(0) if len(z) else torch.zeros(len(tasks))
    nan = float("nan")
    return {t: BatchLabels(int(p + n), int(p), nl if n else nan, pl if p else nan, big)
            for t, p, n, pl, nl, big in zip(tasks, n_pos.tolist(), n_neg.tolist(),
                                            pos_loss.tolist(), neg_loss.tolist(),
                                            largest.tolist(), strict=True)}


def task_gradient_probe(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float],
                        shared: Sequence[nn.Parameter], tasks: Sequence[str]) -> dict[str, Any]:
    """Per-task UNWEIGHTED gradient norms and pairwise cosines on the last shared layer.

    The norms are of each task's own loss, so a task weight cannot hide (or fake) how strong a
    task's gradient is; the weights travel beside them, and the guard weighs them itself
    (:func:`model.probe_checks.check_task_gradients`). ``torch.autograd.grad`` reaches only the last
    shared layer: the heads and that layer are all it backpropagates through.

    Args:
        losses: ``{task: scalar}`` losses, their graphs still alive (kept for the backward).
        weights: ``{task: weight}`` the loss weighting applies (recorded, not applied).
        shared: the last shared layer's parameters.
        tasks: the task names.

    Returns:
        ``{"norms": {task: norm}, "weights": {task: weight}, "cosines": {(task_a, task_b):
        cosine}}``; a pair with a zero or non-finite norm has no cosine.
    """
    vectors = {}
    for t in tasks:
        grads = torch.autograd.grad(losses[t], shared, retain_graph=True, allow_unused=True)
        vectors[t] = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten().float()
                                for g, p in zip(grads, shared, strict=True)])
    norms = {t: float(v.norm()) for t, v in vectors.items()}
    cosines = {}
    for i, a in enumerate(tasks):
        for b in tasks[i + 1:]:
            denom = norms[a] * norms[b]
            if denom > 0 and math.isfinite(denom):
                cosines[(a, b)] = float(vectors[a] @ vectors[b]) / denom
    return {"norms": norms, "weights": {t: float(weights[t]) for t in tasks}, "cosines": cosines}


def parameter_groups(net: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The network's parameters by part: ``embedding/<column>``, ``dense``, ``trunk``,
    ``head/<task>`` (others under their top-level module's name)."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, p in net.named_parameters():
        parts = name.split(".")
        if parts[0].endswith("_embeddings") and len(parts) > 2:
            key = f"embedding/{parts[2]}"
        elif parts[0] == "heads":
            key = f"head/{parts[1]}"
        else:
            key = {"dense_arch": "dense", "bottom": "trunk"}.get(parts[0], parts[0])
        groups.setdefault(key, []).append(p)
    return groups


def group_grad_norms(groups: Mapping[str, Sequence[nn.Parameter]]) -> dict[str, float]:
    """Each parameter group's gradient norm (sparse gradients: their values), before clipping."""
    out = {}
    for key, params in groups.items():
        sq = 0.0
        for p in params:
            g = p.grad
            if g is None:
                continue
            v = g._values() if g.is_sparse else g
            sq += float(torch.linalg.vector_norm(v.float()) ** 2)
        out[key] = math.sqrt(sq)
    return out


class RowGradientWindow:
    """Each id table's row gradients summed over the steps since the last probe.

    One step's row gradient is noisy: a frequent id sums many rows whose signs cancel, a rare
    one is a single row. Summed over ``probe_every`` steps, a normal id's row grows like the
    square root of its count while a row pushed the same way every step (one id whose labels
    are all positive) grows like the count itself: the window's largest row against its median
    touched row separates the two where a single step does not (docs/model.md, "The guard").
    Bucket 0 (the unknown row every dropped or missing id shares) is left out.

    Args:
        tables: ``{id column: its embedding table}`` (``V x D`` weights).
    """

    def __init__(self, tables: Mapping[str, nn.Embedding]) -> None:
        self.tables = dict(tables)
        self.sums = {n: torch.zeros(t.weight.shape, dtype=torch.float32)
                     for n, t in self.tables.items()}
        self.touched = {n: torch.zeros(t.weight.shape[0], dtype=torch.bool)
                        for n, t in self.tables.items()}

    @torch.no_grad()
    def add(self) -> None:
        """Add the tables' current gradients (sparse ones coalesced in place); a step whose
        rows are not all finite is left out (the gradient checks see it)."""
        for name, table in self.tables.items():
            g = table.weight.grad
            if g is None:
                continue
            if g.is_sparse:
                g = table.weight.grad = g.coalesce()
                rows, values = g._indices()[0], g._values()
            else:
                rows = (g != 0).any(1).nonzero().flatten()
                values = g[rows]
            values = values.float()
            if rows.numel() and bool(torch.isfinite(values).all()):
                self.sums[name].index_add_(0, rows, values)
                self.touched[name][rows] = True

    @torch.no_grad()
    def stats(self, top: int = 3) -> dict[str, dict[str, Any]]:
        """Per table: the largest summed rows against the median touched row; then reset.

        Returns:
            ``{column: {"rows": touched rows, "median": norm, "ratio": largest / median,
            "buckets": [bucket, ...], "norms": [norm, ...]}}`` for each table with at least
            two touched rows besides bucket 0 whose summed gradient is not zero (the median
            is theirs).
        """
        out: dict[str, dict[str, Any]] = {}
        for name, sums in self.sums.items():
            touched = self.touched[name]
            touched[0] = False
            rows = touched.nonzero().flatten()
            norms = torch.linalg.vector_norm(sums[rows], dim=1)
            moved = norms > 0  # a row behind dead units gets exactly 0: no yardstick
            if int(moved.sum()) >= 2:
                median = float(norms[moved].median())
                largest, where = norms.topk(min(top, norms.numel()))
                out[name] = {"rows": int(rows.numel()), "median": median,
                             "ratio": float(largest[0]) / max(median, 1e-30),
                             "buckets": [int(b) for b in rows[where].tolist()],
                             "norms": [float(v) for v in largest.tolist()]}
            sums[rows] = 0.0
            sums[0] = 0.0
            touched.zero_()
        return out


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


def autocast_for(precision: str):
    """The autocast context of a precision (``fp32``: none)."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision in ("fp16", "fp16-static"):
        return torch.autocast("cpu", dtype=torch.float16)
    return contextlib.nullcontext()


def _non_finite(out: Any) -> bool:
    if isinstance(out, torch.Tensor):
        return out.is_floating_point() and not bool(torch.isfinite(out).all())
    if isinstance(out, dict):
        return any(_non_finite(v) for v in out.values())
    if isinstance(out, (list, tuple)):
        return any(_non_finite(v) for v in out)
    return False


def first_non_finite_module(net: nn.Module, batch, precision: str = "fp32") -> str | None:
    """Run a forward pass with hooks on every submodule; name the first non-finite output."""
    found: list[str] = []
    handles = []
    for name, module in net.named_modules():
        if not name:
            continue

        def hook(mod, args, out, name=name):
            if not found and _non_finite(out):
                found.append(name)
        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), autocast_for(precision):
            net(batch)
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None
