"""Steps to detection of the guard scenarios over seeds, and false actions on clean runs.

The scenarios of ``tests/model/test_guard_scenarios.py`` whose onset is in the dynamics (a
task weight of 10, one id whose labels are all positive, a learning rate 100x too high after a
10-step warmup) on several seeds of the synthetic set (6000 rows, the tiny model config, batch
256, 3 epochs = 57 steps, probes every 10 steps: the shipped default), and clean runs of the
same seeds under each ``guard.on_anomaly`` policy (any stop or action there is false).

Run: ``.venv/bin/python -m bench guard_scenarios`` (``FUNNELGUARD_BENCH_SEEDS`` seeds,
default 3).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch

from bench.report import machine, write_section
from model.config import bind_config, config_from_dict
from model.job import run_training
from model.synthetic import synthetic_training_set

TINY = {
    "model": {"trunk": [32, 16], "embedding_dim": 4, "head_hidden": 8, "dense_dim": 8,
              "id_buckets": {"user_id": 500, "item_id": 100, "merchant_id": 50}},
    "optim": {"batch_size": 256, "epochs": 3},
    "run": {"progress": False, "tensorboard": False, "checkpoint_every": 0, "triage": False},
}


def _config(data, seed: int, **sections):
    from funnelguard.project import PACKAGED_PROJECT, load_project

    merged = {k: dict(v) for k, v in TINY.items()}
    for name, changes in sections.items():
        merged.setdefault(name, {}).update(changes)
    merged["run"]["seed"] = seed
    project = load_project(PACKAGED_PROJECT)
    return bind_config(config_from_dict(merged), project.tasks, project.feature_specs("offline"))


def _skewed_id(data):
    frame = data.frame.copy()
    counts = frame.loc[frame["split"] == "train", "user_id"].value_counts()
    hot = frame["user_id"] == counts.index[6]  # ~3 % of the rows
    for task in data.tasks:
        frame.loc[hot, f"label_{task}"] = 1.0
    return dataclasses.replace(data, frame=frame)


SCENARIOS = {
    "task weight 10": (lambda d: d, {"loss": {"task_weights": {"click": 10.0}}}),
    "one id with all-positive labels": (_skewed_id, {}),
    "learning rate x100 after a 10-step warmup": (
        lambda d: d, {"optim": {"lr": 0.2, "warmup_steps": 10, "lr_schedule": "constant"}}),
}


def _first(result) -> tuple[str, int | None]:
    guard = next(f for f in result.findings if f.check == "training_guard")
    return guard.value, (None if guard.value == "clean" else guard.count)


def main() -> None:
    torch.set_num_threads(1)
    seeds = range(int(os.environ.get("FUNNELGUARD_BENCH_SEEDS", "3")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (change, sections) in SCENARIOS.items():
            for seed in seeds:
                data = change(synthetic_training_set(6000, seed=seed, ids=2000, days=20))
                result = run_training(data, Path(tmp) / f"{name}-{seed}".replace(" ", "_"),
                                      _config(data, seed, **sections))
                rows.append((name, seed, *_first(result)))
        false = []
        for policy in ("stop", "skip_batch", "rollback"):
            for seed in seeds:
                data = synthetic_training_set(6000, seed=seed, ids=2000, days=20)
                result = run_training(data, Path(tmp) / f"clean-{policy}-{seed}",
                                      _config(data, seed, guard={"on_anomaly": policy}))
                acted = [f for f in result.findings
                         if f.check == "training_action" or
                         (f.check == "training_guard" and f.value != "clean")]
                false.append((policy, seed, len(acted)))
    lines = ["## Guard: steps to detection over seeds (`bench/bench_guard_scenarios.py`)", "",
             f"`.venv/bin/python -m bench guard_scenarios` - {machine()}, torch "
             f"{torch.__version__} on 1 thread. Synthetic set of 6000 rows per seed, the tiny "
             "model, batch 256, 57 steps, probes every 10 steps.", "",
             "| scenario | seed | anomaly | caught at step |", "|---|---:|---|---:|"]
    lines += [f"| {n} | {s} | {kind} | {step if step is not None else 'not caught'} |"
              for n, s, kind, step in rows]
    lines += ["", "Clean runs, every policy: "
              + ", ".join(f"{p} seed {s}: {n} stops/actions" for p, s, n in false) + "."]
    md = "\n".join(lines)
    write_section("guard_scenarios", md)
    print(md)


if __name__ == "__main__":
    main()
