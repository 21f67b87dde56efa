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


def _checkpoints(out: Path, steps: tuple[int, ...], fingerprint: str = "f") -> Path:
    from model.state import TrainingState, write_checkpoint

    for step in steps:
        state = TrainingState(step, {"w": torch.full((2,), float(step))}, {}, torch.get_rng_state())
        write_checkpoint(out, state, {"fingerprint": fingerprint})
    return out / "checkpoints"


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    from model.state import resume_point

    folder = _checkpoints(tmp_path, (5, 10))
    latest = folder / "step-0000010.pt"
    latest.write_bytes(latest.read_bytes()[:100])
    point = resume_point(tmp_path, "f")
    assert point.state is not None and point.state.step == 5
    assert torch.equal(point.state.tensors["w"], torch.full((2,), 5.0))
    assert point.skipped[0][0] == "step-0000010.pt"
    assert "step-0000010.pt (" in point.note and "resumed from the previous one, step-0000005.pt" \
        in point.note


def test_no_readable_checkpoint_starts_over_and_says_so(tmp_path):
    from model.state import resume_point

    folder = _checkpoints(tmp_path, (5, 10))
    (folder / "step-0000010.pt").unlink()
    (folder / "step-0000005.pt").write_bytes(b"")
    point = resume_point(tmp_path, "f")
    assert point.state is None
    assert [name for name, _ in point.skipped] == ["step-0000010.pt", "step-0000005.pt"]
    assert "step-0000010.pt (no such file)" in point.note and "started over from step 0" in point.note


def test_a_checkpoint_of_another_run_is_never_a_fallback(tmp_path):
    from model.state import resume_point

    _checkpoints(tmp_path, (5,), fingerprint="other")
    folder = _checkpoints(tmp_path, (10,))  # this run's pointer; step 5 belongs to another
    (folder / "step-0000010.pt").unlink()
    point = resume_point(tmp_path, "f")
    assert point.state is None and [n for n, _ in point.skipped] == ["step-0000010.pt"]
    assert resume_point(tmp_path, "nobody").skipped == ()  # no pointer of that run: fresh
