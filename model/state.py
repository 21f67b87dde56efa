"""Training state: in-memory replay snapshots and on-disk checkpoints.

A :class:`TrainingState` is everything needed to continue bit-for-bit from the start of a step:
network, optimizers, GradScaler, loss weighting, the guard's windows and the torch RNG state
(the batch order itself is a function of seed and step, ``model.batches``). Snapshots are kept
in a ring of reusable buffers (``copy_`` instead of fresh allocations), so taking one costs a
memory copy of the model and optimizer state and nothing else. Checkpoints are written
atomically (``*.tmp`` then rename) with a fingerprint of config and data, so a resume never
continues a different run.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["TrainingState", "SnapshotRing", "write_checkpoint", "read_checkpoint",
           "latest_checkpoint", "CHECKPOINT_DIR"]

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
