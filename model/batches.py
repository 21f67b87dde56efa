"""The training split as tensors, and a batch order that any step can regenerate.

Batch ``s`` is a pure function of (seed, s): epoch ``e = s // steps_per_epoch`` shuffles the
rows with a generator seeded by (seed, e). Resuming from a checkpoint and replaying steps in
the triage therefore see exactly the batches the original run saw, without storing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from model.encoding import FeatureBatch, FeatureEncoder

__all__ = ["TrainingTensors", "BatchPlan", "tensors_for"]


@dataclass(frozen=True)
class TrainingTensors:
    """Encoded examples with what the forensic bundle needs to show the raw inputs.

    Attributes:
        features: encoded features of N rows.
        labels: ``N x T`` float32 labels (task order of ``tasks``).
        masks: ``N x T`` bool, True where the label is known.
        tasks: task order.
        raw: the N raw rows (the ``keep`` columns, e.g. key and partition, then the feature
            columns), index 0..N-1.
    """

    features: FeatureBatch
    labels: torch.Tensor
    masks: torch.Tensor
    tasks: tuple[str, ...]
    raw: pd.DataFrame

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def base_rates(self) -> dict[str, float]:
        """Positive rate of each task over its known labels."""
        known = self.masks.float().sum(0).clamp(min=1.0)
        pos = (self.labels * self.masks.float()).sum(0)
        return {t: float(pos[i] / known[i]) for i, t in enumerate(self.tasks)}


def tensors_for(frame: pd.DataFrame, encoder: FeatureEncoder, tasks: Sequence[str],
                keep: Sequence[str] = ()) -> TrainingTensors:
    """Encode ``frame`` (rows of a TrainingSet frame) for training.

    Args:
        frame: rows with the feature columns and ``label_{task}`` / ``mask_{task}``.
        encoder: the fitted encoder.
        tasks: the heads, in funnel order.
        keep: further columns ``raw`` keeps for the forensic bundle (the training set's key
            and partition columns), where present.
    """
    raw = frame.reset_index(drop=True)
    labels = torch.from_numpy(np.stack(
        [raw[f"label_{t}"].to_numpy(np.float32, na_value=0.0) for t in tasks], 1))
    masks = torch.from_numpy(np.stack([raw[f"mask_{t}"].to_numpy(bool) for t in tasks], 1))
    columns = list(dict.fromkeys(c for c in (*keep, *encoder.feature_names) if c in raw.columns))
    return TrainingTensors(encoder.encode(raw), labels, masks, tuple(tasks), raw[columns])


class BatchPlan:
    """Which rows batch ``s`` holds.

    Args:
        rows: N training rows.
        batch_size: rows per batch (the last partial batch of an epoch is dropped when N
            holds at least one full batch).
        seed: the run's seed.
    """

    def __init__(self, rows: int, batch_size: int, seed: int) -> None:
        self.rows = rows
        self.batch_size = min(batch_size, rows)
        self.seed = seed
        self.steps_per_epoch = max(rows // self.batch_size, 1)
        self._epoch: int | None = None
        self._perm: torch.Tensor | None = None

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def rows_for(self, step: int) -> torch.Tensor:
        """The row indices of batch ``step`` (int64)."""
        epoch = self.epoch_of(step)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.rows, generator=gen)
            self._epoch = epoch
        assert self._perm is not None
        start = (step % self.steps_per_epoch) * self.batch_size
        return self._perm[start:start + self.batch_size]
