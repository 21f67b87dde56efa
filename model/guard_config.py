"""The training guard's settings (the ``guard:`` section of a training config), as data.

:mod:`model.config` reads and validates the whole config; the guard's own thresholds, its
policy on an anomaly (``on_anomaly``: stop, skip the batch, roll back) and their budgets live
here, beside nothing else, so the guard's knobs read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GuardConfig", "ON_ANOMALY"]

ON_ANOMALY = ("stop", "skip_batch", "rollback")


@dataclass(frozen=True)
class GuardConfig:
    """Thresholds of the training guard (model/guard.py). Defaults never fire on clean runs.

    Attributes:
        enabled: False runs the same loop unguarded (benchmarks only).
        max_task_loss: a task's batch loss above this is divergence whatever its history.
        loss_window, loss_warmup: the robust running window of each task's loss, and the
            steps before spike detection starts.
        loss_spike_z: robust z-score (median / 1.4826 MAD) above which a loss is a spike.
        loss_spike_ratio: ... and the loss must also exceed this multiple of the window's
            90th percentile (rare tasks' batch losses are heavy-tailed).
        loss_spike_positives_p: a rare task's batch loss is set by how many positives the
            batch draws (one positive of a 0.3 % task in a batch of 256 multiplies it by ~30),
            so the guard judges the known negatives' and the known positives' mean loss, each
            against its own window with the two thresholds above; the batch loss itself counts
            only when the batch holds so many positives that their binomial tail at the task's
            rate so far is below this probability (flipped labels); 0 turns this part off, 1
            makes every batch-loss spike count. docs/model.md, "The guard".
        grad_window, grad_warmup: the same for the global gradient norm.
        grad_explosion_factor: norm above factor x running median is an explosion.
        max_grad_norm: an absolute ceiling for the global gradient norm.
        probe_every: steps between probes: the per-task UNWEIGHTED gradient norms on the last
            shared layer, the per-parameter-group gradient norms and the id tables' row
            gradients (``model.step_measurements``).
        domination_share, domination_window: a task whose weighted gradient (its loss weight
            x its unweighted norm) holds a median share of the squared per-task norms of at
            least this over the last ``domination_window`` probes dominates ...
        weighted_domination_share, domination_lift: ... as does one holding a median of at
            least ``weighted_domination_share`` while the weights squeeze the other tasks'
            share ``domination_lift`` times or more below their unweighted share.
        conflict_cosine: pairwise cosine below this is a conflict.
        probe_patience: consecutive probes a domination / conflict must persist to stop.
        scaler_min_scale: an fp16 GradScaler scale below this has collapsed.
        scaler_skip_window, scaler_max_skips: skipped-step rate limit over a window.
        activation_hooks: forward hooks naming the first module with a non-finite output.
        audit_batches: before each step, the batch's labels (0 or 1), masks (no known row
            whose label is missing) and dense inputs (vectorised min / max against the
            contract's ranges, through the encoder) are checked (``model.batch_audit``).
        row_ratio: an id table's largest row gradient, summed over the steps between two
            probes, above this multiple of its median touched row's (bucket 0, the unknown
            row, left out) ...
        row_factor: ... and above this multiple of the table's usual ratio (the median of
            its earlier probes), for ``probe_patience`` probes in a row with the same bucket
            on top, is an exploding row (``model.probe_checks.check_embedding_rows``).
        on_anomaly: what an anomaly does: ``stop`` (the default: bundle and triage),
            ``skip_batch`` (the batch's update is dropped, the GradScaler's state kept
            consistent) or ``rollback`` (the last good snapshot is restored, model and
            optimizers, at the first of ``rollback_lr_scales`` a replay proves stable).
            An anomaly found after the update (scaler collapse) or at a checkpoint always stops.
        max_skipped_batches: skip_batch: batches dropped before the next anomaly stops.
        max_rollbacks: rollback: rollbacks before the next anomaly stops.
        rollback_lr_scales: rollback: multipliers of the learning rate tried in turn (on top
            of those already applied); the first whose replay of the failing stretch passes
            the guard is kept for the rest of the run; none stable stops.
    """

    enabled: bool = True
    max_task_loss: float = 50.0
    loss_window: int = 50
    loss_warmup: int = 20
    loss_spike_z: float = 12.0
    loss_spike_ratio: float = 10.0
    loss_spike_positives_p: float = 1e-9
    grad_window: int = 50
    grad_warmup: int = 20
    grad_explosion_factor: float = 25.0
    max_grad_norm: float = 1e4
    probe_every: int = 10
    domination_share: float = 0.995
    domination_window: int = 5
    weighted_domination_share: float = 0.9
    domination_lift: float = 10.0
    conflict_cosine: float = -0.95
    probe_patience: int = 3
    scaler_min_scale: float = 1.0
    scaler_skip_window: int = 20
    scaler_max_skips: int = 10
    activation_hooks: bool = True
    audit_batches: bool = True
    row_ratio: float = 150.0
    row_factor: float = 1.5
    on_anomaly: str = "stop"
    max_skipped_batches: int = 5
    max_rollbacks: int = 2
    rollback_lr_scales: tuple[float, ...] = (0.1, 0.01)
