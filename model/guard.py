"""The training guard's decisions: pure functions from measurements to an optional Anomaly.

Like Lightning's early stopping (a pure ``_evaluate_stopping_criteria`` apart from logging),
the loop in ``model.training`` measures and this module decides. Each ``check_*`` returns an
:class:`Anomaly` or None; :func:`raise_for` turns one into its :class:`TrainingAnomaly`
subclass. The running statistics are robust (median and MAD over a window) so one earlier
outlier does not hide the next. A rare task's batch loss is dominated by how many positives the
batch happens to hold, so its loss is judged per class: the negatives' and the positives' mean
loss each against its own window (:func:`task_spike`, :class:`BatchLabels`). The checks on
what a probe measures (per-task gradients, id-table rows) are in ``model.probe_checks``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.config import GuardConfig
from model.errors import ANOMALY_TYPES, TrainingAnomaly

__all__ = [
    "Anomaly",
    "BatchLabels",
    "RobustWindow",
    "GuardState",
    "check_task_losses",
    "task_spike",
    "binomial_tail",
    "loss_ceiling",
    "check_possible_losses",
    "check_grad_norm",
    "check_scaler",
    "check_parameters",
    "raise_for",
]

MAD_SCALE = 1.4826  # MAD of a normal distribution = 0.6745 sigma
MIN_POSITIVE_BATCHES = 5  # batches with positives before the positives' loss is judged


@dataclass(frozen=True)
class Anomaly:
    """What the guard saw.

    Attributes:
        kind: the check (a key of ``model.errors.ANOMALY_TYPES``).
        step: the training step (0-based) whose batch triggered it.
        message: plain language: what, where, against which threshold.
        tasks: the task(s) involved (empty when global).
        value, threshold: the measurement and its limit.
        module: the first module whose forward output was non-finite, when known.
        evidence: further numbers (per-task values, medians, cosines ...).
    """

    kind: str
    step: int
    message: str
    tasks: tuple[str, ...] = ()
    value: float | None = None
    threshold: float | None = None
    module: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchLabels:
    """One task's labels in one batch, and its loss split by class.

    The task loss is the mean over the known rows; a positive of a rare task costs about
    ``-log(rate)`` (~6 at 0.25 %) and a negative about ``rate``, so the loss of a batch is set
    mostly by its count of positives. The guard judges the two classes apart.

    Attributes:
        known: rows whose label is known (the task loss averages over them).
        positives: known rows labelled 1.
        negative_loss: mean BCE with logits over the known negatives (nan when none).
        positive_loss: mean BCE with logits over the known positives (nan when none).
        largest_logit: the largest ``|logit|`` over the known rows: no 0/1 label can cost a
            row more than ``|z| + log 2``, which bounds the task loss (:func:`loss_ceiling`).
    """

    known: int
    positives: int
    negative_loss: float = float("nan")
    positive_loss: float = float("nan")
    largest_logit: float = float("nan")


def loss_ceiling(labels: BatchLabels, pos_weight: float = 1.0) -> float:
    """The largest task loss 0/1 labels allow for a batch's logits (``inf`` when unknown).

    BCE with logits of a 0/1 label is ``max(z, 0) - z y + log(1 + exp(-|z|))`` in
    ``[0, |z| + log 2]``; a positive-class weight above 1 scales the positives' part, a focal
    term only lowers it. (For a loss on probabilities clamped to ``[eps, 1 - eps]`` the same
    bound is ``-log(eps)``.) A loss outside ``[0, ceiling]`` is not a training problem: the
    labels are not 0/1.
    """
    if not math.isfinite(labels.largest_logit):
        return math.inf
    return max(1.0, pos_weight) * (labels.largest_logit + math.log(2.0)) + 1e-4


class RobustWindow:
    """The last ``size`` finite values with their median and scaled MAD."""

    def __init__(self, size: int, values: Iterable[float] = ()) -> None:
        self.values: deque[float] = deque(values, maxlen=size)

    def __len__(self) -> int:
        return len(self.values)

    def push(self, value: float) -> None:
        if math.isfinite(value):
            self.values.append(float(value))

    def median(self) -> float:
        s = sorted(self.values)
        n = len(s)
        if n == 0:
            return float("nan")
        return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])

    def quantile(self, q: float) -> float:
        s = sorted(self.values)
        return s[min(int(q * len(s)), len(s) - 1)] if s else float("nan")

    def z(self, value: float) -> float:
        """Robust z-score of ``value``: (value - median) / (1.4826 MAD), MAD floored."""
        med = self.median()
        mad = sorted(abs(v - med) for v in self.values)[len(self.values) // 2]
        scale = MAD_SCALE * max(mad, 1e-3 * abs(med), 1e-12)
        return (value - med) / scale


@dataclass
class GuardState:
    """The guard's memory between steps (saved in snapshots and checkpoints).

    Besides each task's loss window it keeps, per task, windows of the batch loss of the
    known negatives and of the known positives, and the positives and known rows of every batch
    so far (``seen``: the task's positive rate; batches are uniform draws of the training rows,
    so the rate does not drift within a run).
    """

    loss: dict[str, RobustWindow]
    grad_norm: RobustWindow
    dominance_streak: int = 0
    conflict_streak: int = 0
    skipped: deque[int] = field(default_factory=lambda: deque(maxlen=64))
    negatives: dict[str, RobustWindow] = field(default_factory=dict)
    positives: dict[str, RobustWindow] = field(default_factory=dict)
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    row_ratio: dict[str, RobustWindow] = field(default_factory=dict)
    shares: dict[str, RobustWindow] = field(default_factory=dict)
    lifts: dict[str, RobustWindow] = field(default_factory=dict)
    row_streak: dict[str, tuple[int, int]] = field(default_factory=dict)  # table: (bucket, n)

    @classmethod
    def fresh(cls, tasks: Sequence[str], cfg: GuardConfig) -> GuardState:
        return cls.from_dict({"loss": {t: [] for t in tasks}, "grad_norm": [],
                              "dominance_streak": 0, "conflict_streak": 0, "skipped": []}, cfg)

    def push_labels(self, labels: Mapping[str, BatchLabels]) -> None:
        """Remember one batch's per-class losses and counts (after its update)."""
        for t, b in labels.items():
            self.negatives[t].push(b.negative_loss)
            if b.positives:
                self.positives[t].push(b.positive_loss)
            pos, known = self.seen[t]
            self.seen[t] = (pos + int(b.positives), known + int(b.known))

    def to_dict(self) -> dict[str, Any]:
        return {"loss": {t: list(w.values) for t, w in self.loss.items()},
                "grad_norm": list(self.grad_norm.values),
                "dominance_streak": self.dominance_streak,
                "conflict_streak": self.conflict_streak, "skipped": list(self.skipped),
                "negatives": {t: list(w.values) for t, w in self.negatives.items()},
                "positives": {t: list(w.values) for t, w in self.positives.items()},
                "seen": {t: list(c) for t, c in self.seen.items()},
                "row_ratio": {t: list(w.values) for t, w in self.row_ratio.items()},
                "shares": {t: list(w.values) for t, w in self.shares.items()},
                "lifts": {t: list(w.values) for t, w in self.lifts.items()},
                "row_streak": {t: list(c) for t, c in self.row_streak.items()}}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], cfg: GuardConfig) -> GuardState:
        """The state of ``doc``; a state saved before the per-class windows starts them empty."""
        tasks = list(doc["loss"])

        def windows(key: str) -> dict[str, RobustWindow]:
            saved = doc.get(key, {})
            return {t: RobustWindow(cfg.loss_window, saved.get(t, ())) for t in tasks}

        seen = doc.get("seen", {})
        rows = {t: RobustWindow(cfg.grad_window, v) for t, v in doc.get("row_ratio", {}).items()}
        streak = {t: (int(c[0]), int(c[1])) for t, c in doc.get("row_streak", {}).items()}
        shares, lifts = ({t: RobustWindow(cfg.domination_window, v)
                          for t, v in doc.get(key, {}).items()} for key in ("shares", "lifts"))
        return cls({t: RobustWindow(cfg.loss_window, v) for t, v in doc["loss"].items()},
                   RobustWindow(cfg.grad_window, doc["grad_norm"]),
                   int(doc["dominance_streak"]), int(doc["conflict_streak"]),
                   deque(doc["skipped"], maxlen=max(cfg.scaler_skip_window, 1)),
                   windows("negatives"), windows("positives"),
                   {t: (int(seen[t][0]), int(seen[t][1])) if t in seen else (0, 0)
                    for t in tasks}, rows, shares, lifts, streak)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def binomial_tail(n: int, k: int, rate: float) -> float:
    """P(X >= n) for X ~ Binomial(k, rate)."""
    if n <= 0:
        return 1.0
    if n > k or rate <= 0.0:
        return 0.0
    if rate >= 1.0:
        return 1.0
    log_r, log_q = math.log(rate), math.log1p(-rate)
    lg_k = math.lgamma(k + 1)
    total = 0.0
    for j in range(n, k + 1):
        term = math.exp(lg_k - math.lgamma(j + 1) - math.lgamma(k - j + 1) + j * log_r
                        + (k - j) * log_q)
        total += term
        if j > k * rate and term < 1e-17 * total:  # past the mode the terms only shrink
            break
    return min(total, 1.0)


def _spike(value: float, window: RobustWindow, cfg: GuardConfig,
           min_len: int) -> tuple[float, float] | None:
    """(robust z, median) when ``value`` is a spike against ``window``, else None.

    A spike has a robust z above ``loss_spike_z`` and is above ``loss_spike_ratio`` times the
    window's 90th percentile: batch losses are heavy-tailed, the z alone is not enough.
    """
    if not math.isfinite(value) or len(window) < min_len:
        return None
    z = window.z(value)
    if z > cfg.loss_spike_z and value > cfg.loss_spike_ratio * window.quantile(0.9):
        return z, window.median()
    return None


def task_spike(task: str, loss: float, state: GuardState, cfg: GuardConfig,
               labels: BatchLabels | None = None) -> tuple[float, float, str] | None:
    """Whether ``task``'s batch is a loss spike: (robust z, median, what spiked) or None.

    Without ``labels``, the batch loss against its window. With them, the spike must not be
    the noise of the batch's positives, whose count alone moves a rare task's loss ~30x: it is
    the known negatives' mean loss spiking against its own window, or the known positives'
    (after ``MIN_POSITIVE_BATCHES`` batches with positives), or the batch loss spiking while
    the batch holds more positives than the task's rate so far makes plausible (binomial tail
    below ``loss_spike_positives_p``: flipped or leaked labels).
    """
    def said(z: float, what: str) -> str:
        return (f"{what} (robust z {_fmt(z)} > {_fmt(cfg.loss_spike_z)}, and above "
                f"{_fmt(cfg.loss_spike_ratio)}x the window's 90th percentile)")

    total = _spike(loss, state.loss[task], cfg, cfg.loss_warmup)
    batch = None if total is None else \
        said(total[0], f"{task} {_fmt(loss)} vs window median {_fmt(total[1])}")
    if labels is None:
        return None if total is None else (*total, batch)
    negatives = labels.known - labels.positives
    neg = _spike(labels.negative_loss, state.negatives[task], cfg, cfg.loss_warmup)
    if neg is not None:
        return (*neg, said(neg[0], f"{task}'s {negatives} known negatives have mean loss "
                                   f"{_fmt(labels.negative_loss)} (batch loss {_fmt(loss)}) vs "
                                   f"their window median {_fmt(neg[1])}"))
    pos = _spike(labels.positive_loss, state.positives[task], cfg, MIN_POSITIVE_BATCHES) \
        if labels.positives else None
    if pos is not None:
        return (*pos, said(pos[0], f"{task}'s {labels.positives} known positives have mean "
                                   f"loss {_fmt(labels.positive_loss)} (batch loss "
                                   f"{_fmt(loss)}) vs their window median {_fmt(pos[1])}"))
    if total is None:
        return None
    seen_pos, seen_known = state.seen[task]
    rate = (seen_pos + 0.5) / (seen_known + 1.0)
    tail = binomial_tail(labels.positives, labels.known, rate)
    if tail >= cfg.loss_spike_positives_p:
        return None  # a plausible draw of positives: noise
    return (*total, f"{batch}, with {labels.positives} positives of {labels.known} known rows "
                    f"where its rate so far ({seen_pos} of {seen_known}) expects "
                    f"{_fmt(rate * labels.known)} (binomial tail {tail:.2g} < "
                    f"{_fmt(cfg.loss_spike_positives_p)})")


def check_possible_losses(step: int, losses: Mapping[str, float],
                          ceilings: Mapping[str, float] | None = None) -> Anomaly | None:
    """No task's loss is one 0/1 labels cannot produce: negative, or above its ceiling.

    Args:
        step: the step of the batch.
        losses: each task's batch loss (non-finite ones are :func:`check_task_losses`').
        ceilings: each task's largest possible loss for the batch (:func:`loss_ceiling`;
            None: only a negative loss is impossible).
    """
    ceilings = ceilings or {}
    impossible = {t: v for t, v in losses.items() if math.isfinite(v)
                  and (v < -1e-6 or v > ceilings.get(t, math.inf))}
    if impossible:
        worst = next(iter(impossible))
        return Anomaly("impossible_loss", step,
                       f"step {step}: loss of task(s) {', '.join(impossible)} outside what 0/1 "
                       f"labels allow ([0, {_fmt(ceilings.get(worst, math.inf))}] for {worst}: "
                       f"{_fmt(impossible[worst])}); the labels are not 0/1",
                       tuple(impossible), impossible[worst], ceilings.get(worst, 0.0),
                       evidence={"losses": dict(losses),
                                 "ceilings": {t: ceilings.get(t) for t in impossible}})
    return None


def check_task_losses(step: int, losses: Mapping[str, float], state: GuardState,
                      cfg: GuardConfig,
                      labels: Mapping[str, BatchLabels] | None = None) -> Anomaly | None:
    """Each task's loss is finite, under the ceiling, and not a spike (:func:`task_spike`).

    Args:
        step: the step of the batch.
        losses: each task's batch loss.
        state: the windows of the steps before.
        cfg: the thresholds.
        labels: each task's :class:`BatchLabels` in the batch; a task without them is judged
            by its batch loss alone.
    """
    bad = [t for t, v in losses.items() if not math.isfinite(v)]
    if bad:
        return Anomaly("non_finite_loss", step,
                       f"step {step}: loss of task(s) {', '.join(bad)} is non-finite "
                       f"({', '.join(f'{t}={losses[t]}' for t in bad)})",
                       tuple(bad), evidence={"losses": dict(losses)})
    high = [t for t, v in losses.items() if v > cfg.max_task_loss]
    if high:
        worst = max(high, key=lambda t: losses[t])
        return Anomaly("loss_divergence", step,
                       f"step {step}: loss of task(s) {', '.join(high)} above the ceiling "
                       f"{_fmt(cfg.max_task_loss)} ({worst}={_fmt(losses[worst])})",
                       tuple(high), losses[worst], cfg.max_task_loss,
                       evidence={"losses": dict(losses)})
    labels = labels or {}
    spikes = {t: found for t, v in losses.items()
              if (found := task_spike(t, v, state, cfg, labels.get(t))) is not None}
    if not spikes:
        return None
    worst = max(spikes, key=lambda t: spikes[t][0])
    z, _, what = spikes[worst]
    return Anomaly("loss_spike", step,
                   f"step {step}: loss spike in task(s) {', '.join(spikes)}: {what}",
                   tuple(spikes), z, cfg.loss_spike_z,
                   evidence={"losses": dict(losses),
                             "z": {t: s[0] for t, s in spikes.items()},
                             "median": {t: s[1] for t, s in spikes.items()},
                             "spike": {t: s[2] for t, s in spikes.items()},
                             "label_counts": {t: dataclasses.asdict(labels[t])
                                        for t in spikes if t in labels}})


def check_grad_norm(step: int, norm: float, state: GuardState, cfg: GuardConfig,
                    per_task: Mapping[str, float] | None = None) -> Anomaly | None:
    """The global gradient norm before clipping is finite and not exploding."""
    evidence = {"grad_norm": norm, **({"per_task_grad_norm": dict(per_task)} if per_task else {})}
    if not math.isfinite(norm):
        return Anomaly("non_finite_gradient", step,
                       f"step {step}: global gradient norm is {norm} before clipping",
                       value=norm, evidence=evidence)
    if norm > cfg.max_grad_norm:
        return Anomaly("gradient_explosion", step,
                       f"step {step}: global gradient norm {_fmt(norm)} above the ceiling "
                       f"{_fmt(cfg.max_grad_norm)}", value=norm, threshold=cfg.max_grad_norm,
                       evidence=evidence)
    window = state.grad_norm
    if len(window) >= cfg.grad_warmup:
        med = window.median()
        if norm > cfg.grad_explosion_factor * med:
            return Anomaly("gradient_explosion", step,
                           f"step {step}: global gradient norm {_fmt(norm)} is "
                           f"{_fmt(norm / med)}x its running median {_fmt(med)} (limit "
                           f"{_fmt(cfg.grad_explosion_factor)}x)", value=norm,
                           threshold=cfg.grad_explosion_factor * med,
                           evidence={**evidence, "median": med})
    return None


def check_scaler(step: int, scale: float, skipped: bool, state: GuardState,
                 cfg: GuardConfig) -> Anomaly | None:
    """Under fp16: skipped steps over the window, and a collapsing scale."""
    state.skipped.append(1 if skipped else 0)
    skips = sum(state.skipped)
    if scale < cfg.scaler_min_scale:
        return Anomaly("scaler_collapse", step,
                       f"step {step}: GradScaler scale collapsed to {_fmt(scale)} (minimum "
                       f"{_fmt(cfg.scaler_min_scale)}); fp16 overflows on every step",
                       value=scale, threshold=cfg.scaler_min_scale, evidence={"skips": skips})
    if skips > cfg.scaler_max_skips:
        return Anomaly("scaler_collapse", step,
                       f"step {step}: GradScaler skipped {skips} of the last "
                       f"{len(state.skipped)} steps (limit {cfg.scaler_max_skips})",
                       value=float(skips), threshold=float(cfg.scaler_max_skips),
                       evidence={"scale": scale})
    return None


def check_parameters(step: int, bad: Mapping[str, Sequence[int]]) -> Anomaly | None:
    """No non-finite parameter; ``bad`` maps a parameter name to its non-finite rows."""
    if not bad:
        return None
    first = next(iter(bad))
    rows = {name: list(r)[:10] for name, r in bad.items()}
    return Anomaly("non_finite_parameter", step,
                   f"step {step}: non-finite values in {len(bad)} parameter(s), first "
                   f"{first} (rows {rows[first]}); checkpoint refused", module=first,
                   evidence={"rows": rows, "counts": {k: len(v) for k, v in bad.items()}})


def raise_for(anomaly: Anomaly) -> None:
    """Raise the :class:`TrainingAnomaly` subclass of ``anomaly.kind``."""
    raise ANOMALY_TYPES.get(anomaly.kind, TrainingAnomaly)(anomaly)
