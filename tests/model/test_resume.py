"""A run killed with SIGKILL and resumed from its checkpoint ends with the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from model.job import run_training
from model.synthetic import synthetic_training_set
from tests.model.conftest import TINY, tiny_config

ROOT = Path(__file__).resolve().parents[2]
CHANGES = {"optim": {"epochs": 3}, "run": {"checkpoint_every": 5}}


def _script(out: Path) -> str:
    return textwrap.dedent(f"""
        import time, torch
        torch.set_num_threads(1)
        from model.config import config_from_dict
        from model.job import run_training
        from model.synthetic import synthetic_training_set
        raw = {TINY!r}
        for name, changes in {CHANGES!r}.items():
            raw[name].update(changes)
        data = synthetic_training_set(3000, seed=3, ids=1000, days=20)
        run_training(data, {str(out)!r}, config_from_dict(raw),
                     on_step=lambda stats: time.sleep(0.15))
    """)


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    data = synthetic_training_set(3000, seed=3, ids=1000, days=20)
    cfg = tiny_config(**CHANGES)
    reference = run_training(data, tmp_path / "straight", cfg)
    assert reference.status == "pass"

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _script(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pointer = out / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if pointer.exists() and '"step": 10' in pointer.read_text():
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "model.json").exists()

    resumed = run_training(data, out, cfg)
    guard = resumed.findings[0]
    assert resumed.status == "pass" and "resumed from step 10" in guard.message
    a = torch.load(tmp_path / "straight" / "weights.pt", weights_only=True)
    b = torch.load(out / "weights.pt", weights_only=True)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_checkpoint_of_another_config_is_not_resumed(tmp_path):
    data = synthetic_training_set(2000, seed=4, ids=500, days=20)
    first = run_training(data, tmp_path / "m", tiny_config(run={"checkpoint_every": 3}))
    assert first.status == "pass"
    other = run_training(data, tmp_path / "m", tiny_config(optim={"lr": 1e-3},
                                                           run={"checkpoint_every": 3}))
    assert other.status == "pass" and "resumed" not in other.findings[0].message
