"""Training throughput and the guard's overhead, measured side by side in one process.

Model: 3 hashed id tables of 100k x 16, two categorical tables, 13 dense features (26 columns
with the is-default indicators), trunk 256-128, four heads, batch 4096, torch on 2 threads.
Variants, run in interleaved blocks so that load on the shared machine hits them alike:

- ``sparse, guard on``: sparse embedding gradients + the lazy row-wise Adam
  (``model.optimizers.RowAdam``), AdamW for the rest, the guard at its defaults (loss /
  grad-norm checks every step, per-task probe every 100 steps, replay snapshot every 16 steps);
- ``sparse, guard off``: the same loop with ``guard.enabled = false``;
- ``torch SparseAdam, guard off``: the same with ``torch.optim.SparseAdam`` for the tables (what
  the model used before RowAdam);
- ``dense AdamW, guard off``: dense embedding gradients, AdamW over the tables too.

A profile of the default variant (``torch.profiler``, 16 steps) says where the step time goes.

Run: ``.venv/bin/python -m bench train`` (``FUNNELGUARD_BENCH_STEPS`` steps per variant,
default 48; ``FUNNELGUARD_BENCH_ROWS`` rows, default 200000).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import torch

from bench.report import machine, write_section
from model.batches import TrainingTensors
from model.config import TrainConfig
from model.encoding import FeatureBatch
from model.network import FunnelNet
from model.training import Trainer

BUCKETS = {"user_id": 100_000, "item_id": 100_000, "merchant_id": 100_000}
TASKS = ("click", "application", "conversion", "approval")
BATCH = 4096
ON = "sparse embeddings + RowAdam, guard on (default)"
OFF = "sparse embeddings + RowAdam, guard off"
TORCH_SPARSE = "sparse embeddings + torch SparseAdam, guard off"
DENSE = "dense AdamW over the tables, guard off"


def synthetic_tensors(rows: int, seed: int = 0) -> TrainingTensors:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 100_000, (rows, 3), generator=gen)
    cats = torch.randint(0, 7, (rows, 2), generator=gen)
    dense = torch.randn(rows, 26, generator=gen)
    rates = torch.tensor([0.04, 0.012, 0.004, 0.003])
    labels = (torch.rand(rows, 4, generator=gen) < rates).float()
    masks = torch.rand(rows, 4, generator=gen) < 0.8
    raw = pd.DataFrame({"impression_id": np.arange(rows).astype(str)})
    return TrainingTensors(FeatureBatch(ids, cats, dense), labels, masks, TASKS, raw)


def _trainer(data: TrainingTensors, *, guard: bool, sparse: bool,
             torch_sparse_adam: bool = False) -> Trainer:
    cfg = TrainConfig().replace(
        model={"id_buckets": BUCKETS, "trunk": [256, 128], "embedding_dim": 16},
        optim={"batch_size": BATCH, "epochs": 1000, "sparse_embeddings": sparse},
        # The labels here are pure noise: once the model sits at the base rates its gradient
        # norm collapses to ~0.01 and one batch can exceed 25x that. The threshold does not
        # change what a guarded step computes, only whether it stops, so it is widened here.
        guard={"enabled": guard, "grad_explosion_factor": 1000.0}, run={"progress": False, "tensorboard": False,
                                       "checkpoint_every": 0})
    torch.manual_seed(0)
    net = FunnelNet(cfg.model, BUCKETS, {"item_type": 7, "device_type": 7}, 26,
                    data.base_rates(), sparse=sparse)
    trainer = Trainer(net, data, cfg)
    if torch_sparse_adam:
        tables = [t.weight for t in net.embedding_tables().values()]
        trainer.optimizers[1] = torch.optim.SparseAdam(
            [{"params": tables, "lr": cfg.optim.sparse_lr, "base_lr": cfg.optim.sparse_lr}])
    return trainer


def _block(trainer: Trainer, start: int, steps: int) -> float:
    """``steps`` steps of ``Trainer.run``'s loop body (snapshots included, no checkpoints)."""
    every = trainer.config.run.snapshot_every
    guarded = trainer.config.guard.enabled
    began = time.perf_counter()
    for step in range(start, start + steps):
        if guarded and step % every == 0:
            trainer.snapshots.take(step, trainer.tensor_state(), trainer.guard.to_dict())
        trainer.step(step)
    return time.perf_counter() - began


def measure(rows: int, steps: int, block: int = 16) -> dict[str, float]:
    data = synthetic_tensors(rows)
    variants = {
        ON: _trainer(data, guard=True, sparse=True),
        OFF: _trainer(data, guard=False, sparse=True),
        TORCH_SPARSE: _trainer(data, guard=False, sparse=True, torch_sparse_adam=True),
        DENSE: _trainer(data, guard=False, sparse=False),
    }
    seconds = dict.fromkeys(variants, 0.0)
    for trainer in variants.values():  # warm-up
        _block(trainer, 0, 3)
    done = 0
    while done < steps:
        for name, trainer in variants.items():
            seconds[name] += _block(trainer, 3 + done, block)
        done += block
    return {name: s / done for name, s in seconds.items()}


def profile_breakdown(rows: int, steps: int = 16) -> list[tuple[str, float]]:
    """Milliseconds per step by kind of work, from ``torch.profiler`` on the default variant."""
    from torch.profiler import ProfilerActivity, profile

    trainer = _trainer(synthetic_tensors(rows), guard=True, sparse=True)
    _block(trainer, 0, 3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        began = time.perf_counter()
        _block(trainer, 3, steps)
        wall = (time.perf_counter() - began) / steps * 1e3
    events = {e.key: e for e in prof.key_averages()}

    def total(*keys: str) -> float:
        return sum(events[k].cpu_time_total for k in keys if k in events) / 1e3 / steps

    def own(*keys: str) -> float:
        return sum(events[k].self_cpu_time_total for k in keys if k in events) / 1e3 / steps

    matmul = own("aten::mm", "aten::addmm", "aten::bmm")
    row_adam = total("Optimizer.step#RowAdam.step")
    adamw = total("Optimizer.step#AdamW.step")
    relu = own("aten::clamp_min", "aten::threshold_backward")
    gather = own("aten::index", "aten::index_select", "aten::embedding_dense_backward")
    return [("whole step (wall, under the profiler)", wall),
            ("matrix multiplies (forward + backward)", matmul),
            ("ReLU forward + backward", relu),
            ("AdamW step (dense parameters)", adamw),
            ("RowAdam step (embedding tables)", row_adam),
            ("row gathers (batch rows, embedding lookups)", gather)]


def main() -> None:
    torch.set_num_threads(2)
    steps = int(os.environ.get("FUNNELGUARD_BENCH_STEPS", "112"))
    rows = int(os.environ.get("FUNNELGUARD_BENCH_ROWS", "200000"))
    per_step = measure(rows, steps)
    breakdown = profile_breakdown(rows)
    on, off, dense, torch_sparse = (per_step[k] for k in (ON, OFF, DENSE, TORCH_SPARSE))
    lines = [
        "## Training (`bench/bench_train.py`)",
        "",
        f"`.venv/bin/python -m bench train` - {machine()}, torch {torch.__version__} on 2 "
        f"threads, load average at start {os.getloadavg()[0]:.1f}. Model 3 x 100k x 16 "
        f"hashed-id embeddings, trunk 256-128, 4 heads, batch {BATCH}; {steps} measured steps "
        f"per variant in interleaved blocks of 16, {rows} synthetic rows.",
        "",
        "| variant | ms / step | examples / s | vs sparse, guard off |",
        "|---|---:|---:|---:|",
    ]
    for name, sec in per_step.items():
        lines.append(f"| {name} | {sec * 1e3:.1f} | {BATCH / sec:,.0f} | {sec / off:.3f}x |")
    lines += [
        "",
        f"Guard overhead at defaults: **{(on / off - 1) * 100:+.1f} %** of step time (target "
        f"<= 5 %). RowAdam is **{torch_sparse / off:.2f}x** faster per step than torch's "
        f"SparseAdam (same update, to float rounding), and sparse + RowAdam **{dense / off:.2f}x** "
        f"faster than dense AdamW over the tables. Throughput with the guard on: "
        f"**{BATCH / on:,.0f} examples/s** (issue target >= 150k).",
        "",
        "Where a default step's time goes (`torch.profiler`, 16 steps, ms per step; the profiler "
        "itself adds a little):",
        "",
        "| part | ms / step |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in breakdown]
    flops = 3 * 2 * BATCH * (112 * 256 + 256 * 128 + 4 * (128 * 32 + 32))
    lines += [
        "",
        f"The matrix multiplies alone are {flops / 1e9:.1f} GFLOP a step (fp32, forward + "
        f"two backward products); at the measured matmul time that is "
        f"{flops / (breakdown[1][1] / 1e3) / 1e9:.0f} GFLOP/s on these 2 cores (AVX2, no AMX: "
        "bf16 autocast is slower here, not faster). With every other cost removed the step "
        f"would still take {breakdown[1][1]:.0f} ms, i.e. at most "
        f"{BATCH / (breakdown[1][1] / 1e3):,.0f} examples/s; the parts listed leave "
        f"{breakdown[0][1] - sum(ms for _, ms in breakdown[1:]):.0f} ms a step to autograd "
        "bookkeeping, elementwise ops, clipping and Python. Run-to-run spread on this shared "
        "machine is large (the same code measured 56 ms/step at load 1.9): compare ratios "
        "within one run.",
    ]
    md = "\n".join(lines)
    write_section("train", md)
    print(md)


if __name__ == "__main__":
    main()
