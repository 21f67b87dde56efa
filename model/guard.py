"""The training guard's decisions: pure functions from measurements to an optional Anomaly.

Like Lightning's early stopping (a pure ``_evaluate_stopping_criteria`` apart from logging),
the loop in ``model.training`` measures and this module decides. Each ``check_*`` returns an
:class:`Anomaly` or None; :func:`raise_for` turns one into its :class:`TrainingAnomaly`
subclass. The running statistics are robust (median and MAD over a window) so one earlier
outlier does not hide the next.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.config import GuardConfig
from model.errors import ANOMALY_TYPES, TrainingAnomaly

__all__ = [
    "Anomaly",
    "RobustWindow",
    "GuardState",
    "check_task_losses",
    "check_grad_norm",
    "check_task_gradients",
    "check_scaler",
    "check_parameters",
    "raise_for",
]

MAD_SCALE = 1.4826  # MAD of a normal distribution = 0.6745 sigma


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
    """The guard's memory between steps (saved in snapshots and checkpoints)."""

    loss: dict[str, RobustWindow]
    grad_norm: RobustWindow
    dominance_streak: int = 0
    conflict_streak: int = 0
    skipped: deque[int] = field(default_factory=lambda: deque(maxlen=64))

    @classmethod
    def fresh(cls, tasks: Sequence[str], cfg: GuardConfig) -> GuardState:
        return cls({t: RobustWindow(cfg.loss_window) for t in tasks},
                   RobustWindow(cfg.grad_window),
                   skipped=deque(maxlen=max(cfg.scaler_skip_window, 1)))

    def to_dict(self) -> dict[str, Any]:
        return {"loss": {t: list(w.values) for t, w in self.loss.items()},
                "grad_norm": list(self.grad_norm.values),
                "dominance_streak": self.dominance_streak,
                "conflict_streak": self.conflict_streak, "skipped": list(self.skipped)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], cfg: GuardConfig) -> GuardState:
        return cls({t: RobustWindow(cfg.loss_window, v) for t, v in doc["loss"].items()},
                   RobustWindow(cfg.grad_window, doc["grad_norm"]),
                   int(doc["dominance_streak"]), int(doc["conflict_streak"]),
                   deque(doc["skipped"], maxlen=max(cfg.scaler_skip_window, 1)))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def check_task_losses(step: int, losses: Mapping[str, float], state: GuardState,
                      cfg: GuardConfig) -> Anomaly | None:
    """Each task's loss is finite, under the ceiling, and not a spike against its window."""
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
    spikes = {}
    for t, v in losses.items():
        window = state.loss[t]
        if len(window) < cfg.loss_warmup:
            continue
        # Rare tasks have heavy-tailed batch losses (one positive moves the mean a lot): the
        # spike must also dwarf the window's 90th percentile, not only its median.
        z, med, high = window.z(v), window.median(), window.quantile(0.9)
        if z > cfg.loss_spike_z and v > cfg.loss_spike_ratio * high:
            spikes[t] = (z, med)
    if spikes:
        worst = max(spikes, key=lambda t: spikes[t][0])
        z, med = spikes[worst]
        return Anomaly("loss_spike", step,
                       f"step {step}: loss spike in task(s) {', '.join(spikes)}: {worst} "
                       f"{_fmt(losses[worst])} vs window median {_fmt(med)} (robust z "
                       f"{_fmt(z)} > {_fmt(cfg.loss_spike_z)}, and above "
                       f"{_fmt(cfg.loss_spike_ratio)}x the window's 90th percentile)",
                       tuple(spikes), z, cfg.loss_spike_z,
                       evidence={"losses": dict(losses),
                                 "z": {t: s[0] for t, s in spikes.items()},
                                 "median": {t: s[1] for t, s in spikes.items()}})
    return None


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


def check_task_gradients(step: int, norms: Mapping[str, float],
                         cosines: Mapping[tuple[str, str], float], state: GuardState,
                         cfg: GuardConfig) -> Anomaly | None:
    """Per-task gradient norms on the last shared layer: domination and conflict.

    Updates the streak counters in ``state``; an anomaly needs ``probe_patience`` probes in a row.
    """
    finite = {t: v for t, v in norms.items() if math.isfinite(v)}
    total = sum(v * v for v in finite.values())
    shares = {t: v * v / total for t, v in finite.items()} if total > 0 else {}
    evidence = {"per_task_grad_norm": dict(norms), "share": shares,
                "cosine": {f"{a}|{b}": c for (a, b), c in cosines.items()}}
    top = max(shares, key=shares.get) if shares else None
    if top is not None and len(norms) > 1 and shares[top] >= cfg.domination_share:
        state.dominance_streak += 1
    else:
        state.dominance_streak = 0
    worst = min(cosines, key=cosines.get) if cosines else None
    if worst is not None and cosines[worst] <= cfg.conflict_cosine:
        state.conflict_streak += 1
    else:
        state.conflict_streak = 0
    if state.dominance_streak >= cfg.probe_patience and top is not None:
        return Anomaly("task_domination", step,
                       f"step {step}: task {top} holds {shares[top]:.1%} of the squared gradient "
                       f"on the last shared layer for {state.dominance_streak} probes "
                       f"(limit {cfg.domination_share:.1%})", (top,), shares[top],
                       cfg.domination_share, evidence=evidence)
    if state.conflict_streak >= cfg.probe_patience and worst is not None:
        return Anomaly("gradient_conflict", step,
                       f"step {step}: gradients of {worst[0]} and {worst[1]} on the last shared "
                       f"layer have cosine {cosines[worst]:.3f} for {state.conflict_streak} "
                       f"probes (limit {cfg.conflict_cosine})", worst, cosines[worst],
                       cfg.conflict_cosine, evidence=evidence)
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
