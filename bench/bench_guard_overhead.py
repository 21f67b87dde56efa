"""What the guard's per-step measurements cost: step time with each against the guard off.

Model and data as ``bench/bench_train.py`` (3 hashed id tables of 100k x 16, trunk 256-128,
four heads, batch 4096, torch on 2 threads, noise labels). Variants, run in interleaved blocks
in one process so that load on the shared machine hits them alike:

- ``guard off``: ``guard.enabled = false``;
- ``guard on, probes every 100 steps, no batch audit``: the visibility the guard had before
  (loss and global-norm checks every step, the probe every 100 steps; the id tables' row
  gradients are still summed every step);
- ``guard on, defaults``: the batch audit (labels, masks, input ranges) every step, the probe
  every 10 steps (per-task unweighted norms on the last shared layer, per-group norms, the id
  tables' summed row gradients);
- ``guard on, probes every step``: the probe's cost made visible.

Each part's own cost is timed apart too (mean over the measured steps): the batch audit, the
row-gradient sum, one probe (``task_gradient_probe`` + group norms + row statistics).

Run: ``.venv/bin/python -m bench guard_overhead`` (``FUNNELGUARD_BENCH_STEPS`` steps per
variant, default 96; ``FUNNELGUARD_BENCH_ROWS`` rows, default 200000).
"""

from __future__ import annotations

import os
import time

import torch

from bench.bench_train import BATCH, BUCKETS, synthetic_tensors
from bench.report import machine, write_section
from model.batch_audit import BatchAudit
from model.batches import TrainingTensors
from model.config import TrainConfig
from model.network import FunnelNet
from model.step_measurements import group_grad_norms
from model.training import Trainer

OFF = "guard off"
BEFORE = "guard on, probes every 100 steps, no batch audit"
DEFAULT = "guard on, defaults (audit every step, probes every 10 steps)"
EVERY = "guard on, probes every step"


def _trainer(data: TrainingTensors, **guard) -> Trainer:
    cfg = TrainConfig().replace(
        model={"id_buckets": BUCKETS, "trunk": [256, 128], "embedding_dim": 16},
        optim={"batch_size": BATCH, "epochs": 1000},
        # Noise labels: thresholds widened so nothing stops; what a step computes is unchanged.
        guard={"grad_explosion_factor": 1000.0, "domination_share": 1.01, "row_ratio": 1e30,
               **guard},
        run={"progress": False, "tensorboard": False, "checkpoint_every": 0})
    torch.manual_seed(0)
    net = FunnelNet(cfg.model, BUCKETS, {"item_type": 7, "device_type": 7}, 26,
                    data.base_rates(), sparse=True)
    low = torch.full((13,), -1e9)
    audit = BatchAudit(data.tasks, tuple(f"x{i}" for i in range(13)), ((None, None),) * 13,
                       low, -low, torch.zeros(len(data), len(data.tasks), dtype=torch.bool))
    return Trainer(net, data, cfg, audit=audit)


def _block(trainer: Trainer, start: int, steps: int) -> float:
    every = trainer.config.run.snapshot_every
    began = time.perf_counter()
    for step in range(start, start + steps):
        if trainer.config.guard.enabled and step % every == 0:
            trainer.snapshots.take(step, trainer.tensor_state(), trainer.guard.to_dict())
        trainer.step(step)
    return time.perf_counter() - began


def measure(rows: int, steps: int, block: int = 16) -> dict[str, float]:
    data = synthetic_tensors(rows)
    variants = {OFF: _trainer(data, enabled=False),
                BEFORE: _trainer(data, probe_every=100, audit_batches=False),
                DEFAULT: _trainer(data),
                EVERY: _trainer(data, probe_every=1)}
    seconds = dict.fromkeys(variants, 0.0)
    for trainer in variants.values():
        _block(trainer, 1, 3)  # warm-up, off the probe steps
    done = 0
    while done < steps:
        for name, trainer in variants.items():
            seconds[name] += _block(trainer, 4 + done, block)
        done += block
    return {name: s / done for name, s in seconds.items()}


def parts(rows: int, steps: int = 16) -> dict[str, float]:
    """Milliseconds of each measurement alone, on the default trainer's batches."""
    data = synthetic_tensors(rows)
    trainer = _trainer(data)
    spent = {"batch audit (labels, masks, input min/max)": 0.0,
             "row-gradient sum of the id tables": 0.0,
             "one probe (per-task norms, group norms, row statistics)": 0.0}
    keys = list(spent)
    for step in range(steps):
        rows_of = trainer.plan.rows_for(step)
        began = time.perf_counter()
        trainer.audit.check(step, rows_of, data)
        spent[keys[0]] += time.perf_counter() - began
        logits, losses = trainer._forward(rows_of, "fp32")
        began = time.perf_counter()
        trainer._probe(losses)
        probe = time.perf_counter() - began
        for opt in trainer.optimizers:
            opt.zero_grad(set_to_none=True)
        trainer.weighting(losses).backward()
        began = time.perf_counter()
        trainer.row_window.add()
        spent[keys[1]] += time.perf_counter() - began
        began = time.perf_counter()
        group_grad_norms(trainer.groups)
        trainer.row_window.stats()
        spent[keys[2]] += probe + time.perf_counter() - began
    return {k: v / steps * 1e3 for k, v in spent.items()}


def main() -> None:
    torch.set_num_threads(2)
    steps = int(os.environ.get("FUNNELGUARD_BENCH_STEPS", "96"))
    rows = int(os.environ.get("FUNNELGUARD_BENCH_ROWS", "200000"))
    load = os.getloadavg()[0]
    per_step = measure(rows, steps)
    each = parts(rows)
    off = per_step[OFF]
    lines = [
        "## Guard: cost of the per-step measurements (`bench/bench_guard_overhead.py`)",
        "",
        f"`.venv/bin/python -m bench guard_overhead` - {machine()}, torch {torch.__version__} "
        f"on 2 threads, load average at start {load:.1f}. Model and data of the training "
        f"benchmark (3 x 100k x 16 id tables, trunk 256-128, 4 heads, batch {BATCH}); {steps} "
        f"measured steps per variant in interleaved blocks of 16, {rows} rows.",
        "",
        "| variant | ms / step | vs guard off |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {sec * 1e3:.1f} | {sec / off:.3f}x |" for name, sec in per_step.items()]
    lines += [
        "",
        f"The defaults cost **{(per_step[DEFAULT] / off - 1) * 100:+.1f} %** of step time "
        f"against the guard off ({(per_step[DEFAULT] / per_step[BEFORE] - 1) * 100:+.1f} % "
        f"against probes every 100 steps without the audit); a probe on every step would cost "
        f"{(per_step[EVERY] / off - 1) * 100:+.1f} %.",
        "",
        "Each measurement alone (ms, mean over 16 steps):",
        "",
        "| measurement | ms |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in each.items()]
    md = "\n".join(lines)
    write_section("guard_overhead", md)
    print(md)


if __name__ == "__main__":
    main()
