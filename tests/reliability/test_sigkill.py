"""SIGKILL during training on the second project, through ``funnelguard train``.

The synthetic case (``run_training`` killed at step 10 and resumed, weights bit-identical to an
uninterrupted run) is tests/model/test_resume.py::test_sigkill_then_resume_matches_uninterrupted;
it is not repeated here. This adds the marketplace (its project file, its stages click ->
signup -> funded, its id columns) through the CLI edge: the killed ``funnelguard train`` is the
real console entry point in a process of its own, the resume is the same command line, the
store holds one training run and no half-written one, and a bad night after the kill (the
latest checkpoint truncated, or gone) must not stop the resume either.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.reliability.harness import assert_outcome, run_in_process

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "byow" / "tiny_train.yaml"
KILL_AT = 10

# The killed process: the real CLI entry point, each step slowed so the kill lands mid-run.
_KILLED = textwrap.dedent("""
    import sys, time
    import torch
    torch.set_num_threads(1)
    import model.job as job
    real = job.run_training
    def slowed(*args, **kwargs):
        kwargs["on_step"] = lambda stats: time.sleep(0.2)
        return real(*args, **kwargs)
    job.run_training = slowed
    from funnelguard.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the killed process: the same arithmetic, bit for bit
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def killed(marketplace, tmp_path_factory):
    """An uninterrupted run, and a run of the same command killed after checkpoint KILL_AT."""
    from funnelguard.cli import run

    root = tmp_path_factory.mktemp("sigkill")
    raw = yaml.safe_load(TINY.read_text())
    raw["optim"]["epochs"] = 2  # the resume crosses an epoch boundary (shuffle state restored)
    raw["run"]["checkpoint_every"] = 5
    config = root / "train.yaml"
    config.write_text(yaml.safe_dump(raw))

    def argv(out: Path, store: Path) -> list[str]:
        return ["-q", "train", "--project", str(marketplace.project_path), "--as-of",
                marketplace.as_of.isoformat(), "--out", str(out), "--config", str(config),
                "--store", f"sqlite:///{store}"]

    code, result = run(argv(root / "straight", root / "straight.db"))
    assert code == 0, (result.error, result.findings)

    out = root / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FUNNELGUARD_SPOOL": str(root / "spool")}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, *argv(out, root / "killed.db")],
                            cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    pointer = out / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if pointer.exists() and f'"step": {KILL_AT}' in pointer.read_text():
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "model.json").exists()
    return {"argv": argv, "straight": root / "straight", "killed": out,
            "killed_store": root / "killed.db"}


def _resume(killed, run_cli, capsys, tmp_path, damage=None):
    out = tmp_path / "resumed"
    shutil.copytree(killed["killed"], out)
    store = tmp_path / "store.db"
    if killed["killed_store"].exists():
        shutil.copyfile(killed["killed_store"], store)
    if damage is not None:
        damage(out / "checkpoints")
    outcome = run_in_process(run_cli, capsys, killed["argv"](out, store))
    return out, store, outcome


def _same_weights(a: Path, b: Path) -> None:
    wa = torch.load(a / "weights.pt", weights_only=True)
    wb = torch.load(b / "weights.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def _training_runs(store: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
        return con.execute("SELECT as_of, status FROM fg_training_runs").fetchall()


def test_marketplace_resume_after_sigkill_is_bit_identical(killed, marketplace, run_cli, capsys,
                                                            tmp_path):
    out, store, outcome = _resume(killed, run_cli, capsys, tmp_path)
    assert_outcome(outcome, 0, "pass")
    guard = outcome.result.findings[0]
    assert guard.check == "training_guard" and f"resumed from step {KILL_AT}" in guard.message
    _same_weights(killed["straight"], out)
    # The killed run left nothing half-written in the store; the resumed one is there once.
    assert _training_runs(store) == [(marketplace.as_of.isoformat(), "pass")]


def _truncate_latest(folder: Path) -> None:
    latest = max(folder.glob("step-*.pt"))
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 3])


def _delete_latest(folder: Path) -> None:
    max(folder.glob("step-*.pt")).unlink()


def test_marketplace_resume_with_a_truncated_checkpoint(killed, run_cli, capsys, tmp_path):
    """The disk filled after the kill: the latest checkpoint is cut short."""
    out, _, outcome = _resume(killed, run_cli, capsys, tmp_path, damage=_truncate_latest)
    assert_outcome(outcome, 0, "pass")
    guard = outcome.result.findings[0]
    assert f"step-{KILL_AT:07d}.pt (" in guard.message and "could not be read" in guard.message
    assert f"resumed from step {KILL_AT - 5}" in guard.message  # the previous of the two kept
    _same_weights(killed["straight"], out)


def test_marketplace_resume_with_the_checkpoint_gone(killed, run_cli, capsys, tmp_path):
    """Someone cleaned the checkpoint the pointer names."""
    out, _, outcome = _resume(killed, run_cli, capsys, tmp_path, damage=_delete_latest)
    assert_outcome(outcome, 0, "pass")
    guard = outcome.result.findings[0]
    assert f"step-{KILL_AT:07d}.pt (no such file)" in guard.message
    assert f"resumed from step {KILL_AT - 5}" in guard.message
    _same_weights(killed["straight"], out)
