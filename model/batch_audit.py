"""What the guard checks in a batch before its forward pass: labels, masks and input ranges.

A finite value outside the features contract that does not explode the loss, a label of 2.0
or -1, a mask that calls a row's label known where the label column is empty: none of these
makes a loss non-finite, so without this audit they would train silently. Before each step
:meth:`BatchAudit.check` looks at the batch's rows (the per-row verdicts of the whole split
are computed once in one vectorised pass, so a clean batch costs a gather of ``B`` flags):

- labels: every value is 0 or 1 (a NaN or any other number is flagged);
- masks: no row is known (mask True) for a task whose label column was missing (NaN) in
  the training frame; the tensors carry such a label as 0, so the frame's missing cells
  are kept apart (:meth:`BatchAudit.of`);
- dense inputs: each numeric feature's values against its contract range
  mapped through the encoder's standardization (``(transform(bound) - mean) / std``; the
  default sentinel is encoded 0.0 and never out of range; non-finite values are left to the
  loss checks, which name the first module they break).

It returns a :class:`model.guard.Anomaly` (``invalid_labels`` or ``out_of_contract_input``)
or None; the trainer decides what to do with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from model.guard import Anomaly

if TYPE_CHECKING:
    import pandas as pd

    from model.batches import TrainingTensors
    from model.encoding import FeatureEncoder

__all__ = ["BatchAudit", "label_problems"]

# Encoded bounds are float32 arithmetic on the encoder's float64 statistics: a value at the
# contract's bound may land this far outside it.
_SLACK = 1e-4


def _encoded(bound: float | None, log: bool, mean: float, std: float, side: float) -> float:
    if bound is None:
        return side * math.inf
    v = math.copysign(math.log1p(abs(bound)), bound) if log else float(bound)
    return (v - mean) / std + side * _SLACK * max(1.0, abs((v - mean) / std))


@dataclass(frozen=True)
class BatchAudit:
    """Per-batch label, mask and range checks (see the module docstring).

    Attributes:
        tasks: the label columns' tasks, in tensor order.
        columns: the numeric features, in the order of the first ``len(columns)`` dense columns.
        ranges: each numeric feature's contract range ``(low, high)`` (None: unbounded).
        low, high: ``len(columns)`` encoded bounds (float32; -inf / inf where unbounded).
        missing: ``N x T`` bool, True where the training frame's label cell was missing
            (None: not known, the mask check is off).
    """

    tasks: tuple[str, ...]
    columns: tuple[str, ...] = ()
    ranges: tuple[tuple[float | None, float | None], ...] = ()
    low: torch.Tensor | None = None
    high: torch.Tensor | None = None
    missing: torch.Tensor | None = None
    _flags: dict[int, torch.Tensor] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, encoder: FeatureEncoder | None, frame: pd.DataFrame | None,
           tasks: Sequence[str]) -> BatchAudit:
        """The audit of a training split encoded by ``encoder`` (either may be None).

        Args:
            encoder: the fitted encoder (its feature specs carry the contract's ranges).
            frame: the training split as given to ``tensors_for`` (``label_{task}`` columns).
            tasks: the heads, in tensor order.
        """
        tasks = tuple(tasks)
        missing = None
        if frame is not None and all(f"label_{t}" in frame for t in tasks):
            missing = torch.from_numpy(np.stack(
                [frame[f"label_{t}"].isna().to_numpy() for t in tasks], 1))
        if encoder is None or not encoder.dense:
            return cls(tasks, missing=missing)
        specs = {f.name: f for f in encoder.features}
        ranges = tuple((getattr(specs.get(d.name), "low", None),
                        getattr(specs.get(d.name), "high", None)) for d in encoder.dense)
        pairs = list(zip(encoder.dense, ranges, strict=True))
        low = [_encoded(lo, d.log, d.mean, d.std, -1.0) for d, (lo, _) in pairs]
        high = [_encoded(hi, d.log, d.mean, d.std, 1.0) for d, (_, hi) in pairs]
        return cls(tasks, encoder.dense_columns, ranges, torch.tensor(low, dtype=torch.float32),
                   torch.tensor(high, dtype=torch.float32), missing)

    def flagged(self, data: TrainingTensors) -> torch.Tensor:
        """``N`` bool: the rows of ``data`` any check would flag (computed once per data)."""
        cached = self._flags.get(id(data))
        if cached is not None:
            return cached
        y = data.labels
        bad = (~((y == 0) | (y == 1))).any(1)
        if self.missing is not None:
            bad |= (data.masks & self.missing).any(1)
        if self.low is not None:
            dense = data.features.dense[:, :len(self.columns)]
            bad |= ((dense < self.low) | (dense > self.high)).any(1)  # NaN compares False
        self._flags.clear()
        self._flags[id(data)] = bad
        return bad

    def check(self, step: int, rows: torch.Tensor, data: TrainingTensors) -> Anomaly | None:
        """The batch ``rows`` of ``data``: an ``invalid_labels`` or ``out_of_contract_input``
        anomaly, or None.

        The per-row verdicts are computed once for the whole split (:meth:`flagged`: one
        vectorised pass), so a clean batch costs one gather of ``B`` flags; a flagged batch
        is then described from its own rows.
        """
        if not bool(self.flagged(data)[rows].any()):
            return None
        labels, masks = data.labels[rows], data.masks[rows]
        missing = self.missing[rows] if self.missing is not None else None
        found = label_problems(step, labels, masks, self.tasks, missing)
        if found is not None or self.low is None:
            return found
        dense = data.features.dense[rows][:, :len(self.columns)]
        # Non-finite values are the loss checks' (they name the module they break); 0.0 is
        # the encoded default, inside every range.
        dense = torch.where(torch.isfinite(dense), dense, torch.zeros((), dtype=dense.dtype))
        lo, hi = dense.amin(0), dense.amax(0)
        outside = (lo < self.low) | (hi > self.high)
        if not bool(outside.any()):
            return None
        bad = outside.nonzero().flatten().tolist()
        counts = ((dense[:, bad] < self.low[bad]) | (dense[:, bad] > self.high[bad])).sum(0)
        named = {self.columns[i]: {"rows": int(c), "range": list(self.ranges[i])}
                 for i, c in zip(bad, counts.tolist(), strict=True)}
        first = self.columns[bad[0]]
        return Anomaly("out_of_contract_input", step,
                       f"step {step}: {sum(v['rows'] for v in named.values())} finite input "
                       f"value(s) outside the features contract's range in "
                       + ", ".join(f"{n} ({v['rows']} rows, range {v['range']})"
                                   for n, v in named.items()),
                       value=float(len(named)), module=None,
                       evidence={"features": named, "first": first})


def label_problems(step: int, labels: torch.Tensor, masks: torch.Tensor, tasks: Sequence[str],
                   missing: torch.Tensor | None = None) -> Anomaly | None:
    """Labels that are not 0 / 1, or known rows whose label is missing, in one batch.

    Args:
        step: the batch's step.
        labels: ``B x T`` float labels.
        masks: ``B x T`` bool, True where the label is known.
        tasks: the ``T`` task names.
        missing: ``B x T`` bool, True where the frame's label was missing (None: unchecked).
    """
    invalid = ~((labels == 0) | (labels == 1))  # NaN is neither
    inconsistent = masks & missing if missing is not None else torch.zeros_like(masks)
    if not bool(invalid.any() or inconsistent.any()):
        return None
    per_task = {}
    for i, t in enumerate(tasks):
        bad, wrong = int(invalid[:, i].sum()), int(inconsistent[:, i].sum())
        if bad or wrong:
            column = labels[:, i]
            values = sorted({float(v) for v in column[invalid[:, i]].tolist()}, key=str)[:5]
            per_task[t] = {"invalid_labels": bad, "values": values,
                           "known_but_missing": wrong}
    said = "; ".join(
        f"{t}: " + ", ".join(x for x in (
            f"{e['invalid_labels']} label(s) not 0/1 (e.g. {e['values']})" if e["invalid_labels"]
            else "", f"{e['known_but_missing']} row(s) masked known with a missing label"
            if e["known_but_missing"] else "") if x)
        for t, e in per_task.items())
    return Anomaly("invalid_labels", step, f"step {step}: the batch's labels are impossible: {said}",
                   tuple(per_task), float(sum(e["invalid_labels"] + e["known_but_missing"]
                                              for e in per_task.values())),
                   evidence={"label_problems": per_task})
