"""Training state: in-memory replay snapshots and on-disk checkpoints.

A :class:`TrainingState` is everything needed to continue bit-for-bit from the start of a step:
network, optimizers, GradScaler, loss weighting, the guard's windows and the torch RNG state
(the batch order itself is a function of seed and step, ``model.batches``). Snapshots are kept
in a ring of reusable buffers (``copy_`` instead of fresh allocations), so taking one costs a
memory copy of the model and optimizer state and nothing else. Checkpoints are written
atomically (``*.tmp`` then rename) with a fingerprint of config and data, so a resume never
continues a different run. :func:`resume_point` picks the checkpoint a resume starts from: the
one ``latest.json`` names, else (truncated by a full disk, deleted, unreadable) the previous one
of the two kept, else none (start over), saying which it skipped and why.
"""

from __future__ import annotations

import copy
import json
import pickle
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["TrainingState", "SnapshotRing", "ResumePoint", "write_checkpoint", "read_checkpoint",
           "latest_checkpoint", "resume_point", "CHECKPOINT_DIR"]

CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainingState:
    """State at the start of ``step`` (before its batch is used)."""

    step: int
    tensors: dict[str, Any]  # net, optimizers, scaler, weighting (state_dicts)
    guard: dict[str, Any]
    rng: torch.Tensor

    def clone(self) -> TrainingState:
        return TrainingState(self.step, copy.deepcopy(self.tensors), copy.deepcopy(self.guard),
                             self.rng.clone())


def _copy_into(dst: Any, src: Any) -> Any:
    """Copy ``src`` into ``dst`` reusing ``dst``'s tensors where shapes match."""
    if isinstance(src, torch.Tensor):
        if isinstance(dst, torch.Tensor) and dst.shape == src.shape and dst.dtype == src.dtype \
                and dst.layout == src.layout and not src.is_sparse:
            return dst.copy_(src)
        return src.detach().clone()
    if isinstance(src, dict):
        base = dst if isinstance(dst, dict) else {}
        return {k: _copy_into(base.get(k), v) for k, v in src.items()}
    if isinstance(src, (list, tuple)):
        base = dst if isinstance(dst, (list, tuple)) and len(dst) == len(src) else [None] * len(src)
        out = [_copy_into(d, s) for d, s in zip(base, src, strict=True)]
        return out if isinstance(src, list) else tuple(out)
    return copy.deepcopy(src)


class SnapshotRing:
    """The last ``size`` snapshots, in reusable buffers."""

    def __init__(self, size: int) -> None:
        self.states: deque[TrainingState] = deque(maxlen=max(size, 1))
        self._spare: TrainingState | None = None

    def take(self, step: int, tensors: dict[str, Any], guard: dict[str, Any]) -> None:
        spare = self.states[0] if len(self.states) == self.states.maxlen else None
        base = spare.tensors if spare is not None else None
        state = TrainingState(step, _copy_into(base, tensors), copy.deepcopy(guard),
                              torch.get_rng_state())
        self.states.append(state)

    def before(self, step: int, within: int) -> TrainingState | None:
        """The earliest snapshot in ``[step - within, step]``, else the latest up to ``step``."""
        candidates = [s for s in self.states if s.step <= step]
        inside = [s for s in candidates if s.step >= step - within]
        if inside:
            return min(inside, key=lambda s: s.step)
        return max(candidates, key=lambda s: s.step) if candidates else None


def write_checkpoint(out_dir: Path, state: TrainingState, meta: dict[str, Any]) -> Path:
    """Write ``checkpoints/step-XXXXXXX.pt`` and point ``checkpoints/latest.json`` at it."""
    folder = Path(out_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{state.step:07d}.pt"
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"step": state.step, "tensors": state.tensors, "guard": state.guard,
                "rng": state.rng, "meta": meta}, tmp)
    tmp.replace(path)
    pointer = folder / "latest.json"
    pointer_tmp = folder / "latest.json.tmp"
    pointer_tmp.write_text(json.dumps({"path": path.name, "step": state.step, **meta}) + "\n")
    pointer_tmp.replace(pointer)
    for old in sorted(folder.glob("step-*.pt"))[:-2]:  # keep the last two
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(out_dir: Path) -> dict[str, Any] | None:
    """The ``latest.json`` pointer of ``out_dir``, or None."""
    pointer = Path(out_dir) / CHECKPOINT_DIR / "latest.json"
    if not pointer.exists():
        return None
    try:
        return json.loads(pointer.read_text())
    except ValueError:
        return None


def read_checkpoint(path: Path) -> tuple[TrainingState, dict[str, Any]]:
    """Load a checkpoint written by :func:`write_checkpoint`."""
    doc = torch.load(path, map_location="cpu", weights_only=False)
    return TrainingState(doc["step"], doc["tensors"], doc["guard"], doc["rng"]), doc["meta"]


# What torch.load raises on a checkpoint that is truncated, emptied, overwritten or gone:
# OSError (a missing file; errno 22 from the zip reader), RuntimeError ("failed finding central
# directory"), EOFError / UnpicklingError (a cut pickle), BadZipFile, KeyError / TypeError (a
# document without the keys write_checkpoint writes).
_UNREADABLE = (OSError, RuntimeError, EOFError, ValueError, KeyError, TypeError, AttributeError,
               zipfile.BadZipFile, pickle.UnpicklingError)


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts.

    Attributes:
        state: the checkpoint's state, or None (start from step 0).
        path: the checkpoint file it came from, or None.
        skipped: ``(file name, why)`` of each checkpoint of this run that could not be read.
    """

    state: TrainingState | None
    path: Path | None = None
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def note(self) -> str:
        """One sentence for the run's message when a checkpoint was skipped, else empty."""
        if not self.skipped:
            return ""
        bad = "; ".join(f"{name} ({why})" for name, why in self.skipped)
        then = (f"resumed from the previous one, {self.path.name}" if self.path is not None
                else "started over from step 0")
        return f"checkpoint(s) could not be read: {bad}; {then}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def resume_point(out_dir: Path, fingerprint: str) -> ResumePoint:
    """The newest readable checkpoint of the run with ``fingerprint`` under ``out_dir``.

    The file ``latest.json`` names is tried first, then the other ``step-*.pt`` files, newest
    first; a file whose fingerprint differs belongs to another run and is passed over in
    silence. Without a pointer for this run nothing is resumed (a fresh run).
    """
    pointer = latest_checkpoint(out_dir)
    if not pointer or pointer.get("fingerprint") != fingerprint:
        return ResumePoint(None)
    folder = Path(out_dir) / CHECKPOINT_DIR
    named = [folder / Path(str(pointer["path"])).name] if pointer.get("path") else []
    older = sorted((p for p in folder.glob("step-*.pt") if all(p != n for n in named)),
                   reverse=True)
    skipped: list[tuple[str, str]] = []
    for path in (*named, *older):
        try:
            state, meta = read_checkpoint(path)
        except _UNREADABLE as exc:
            skipped.append((path.name, _why(exc)))
            continue
        if meta.get("fingerprint") != fingerprint:
            continue
        return ResumePoint(state, path, tuple(skipped))
    return ResumePoint(None, None, tuple(skipped))
