"""Raw feature columns to model tensors, with statistics fitted on the training split.

The encoder is saved in the model directory (``encoder.json``) and reused at serving, so the
normalization statistics and vocabularies cannot drift apart between training and scoring:

- high-cardinality ids (``kind == "id"``) hash into ``id_buckets[name]`` buckets with a fixed
  key (``pandas.util.hash_array``, stable across processes); bucket 0 is the default ``unknown``;
- categoricals map through a vocabulary: 0 is the default ``unknown``, 1 an unseen value, 2..
  the values seen in training;
- numeric features become two dense columns: the standardized value (heavy-tailed unbounded
  features through a signed ``log1p`` first; the default sentinel becomes 0.0) and an
  ``is_default`` indicator, so the sentinel is handled explicitly instead of as a number.

Non-finite values pass through unchanged (inf stays inf, NaN stays NaN): the training guard
must see them and name the feature, and a scorer must not invent a value for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from funnelguard.warehouse import FEATURES, FeatureSpec
from model.errors import FeatureFrameError

__all__ = ["FeatureBatch", "DenseStat", "FeatureEncoder", "HASH_KEY"]

HASH_KEY = "funnelguard-ids0"  # 16 characters: pandas' siphash key
UNKNOWN, UNSEEN = 0, 1


class FeatureBatch(NamedTuple):
    """Encoded features of B rows.

    Attributes:
        ids: ``B x I`` int64 hashed id buckets.
        cats: ``B x C`` int64 vocabulary indices.
        dense: ``B x 2N`` float32: N standardized values then N is-default indicators.
    """

    ids: torch.Tensor
    cats: torch.Tensor
    dense: torch.Tensor

    def index(self, rows: torch.Tensor) -> FeatureBatch:
        return FeatureBatch(self.ids[rows], self.cats[rows], self.dense[rows])


@dataclass(frozen=True)
class DenseStat:
    """How one numeric feature is standardized: ``(transform(x) - mean) / std``."""

    name: str
    default: float
    log: bool
    mean: float
    std: float


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.sign(x) * np.log1p(np.abs(x))


def _is_heavy_tailed(spec: FeatureSpec) -> bool:
    return spec.low is not None and spec.low >= 0 and spec.high is None


@dataclass(frozen=True)
class FeatureEncoder:
    """Fitted encoding of the feature columns (see the module docstring).

    Attributes:
        id_buckets: hashed buckets per id column (bucket 0 is the default).
        vocabularies: per categorical, the values seen in training (index = position + 2).
        dense: the numeric features' standardization, in column order.
    """

    id_buckets: Mapping[str, int]
    vocabularies: Mapping[str, tuple[str, ...]]
    dense: tuple[DenseStat, ...]
    _lookup: dict[str, dict[str, int]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def id_columns(self) -> tuple[str, ...]:
        return tuple(self.id_buckets)

    @property
    def categorical_columns(self) -> tuple[str, ...]:
        return tuple(self.vocabularies)

    @property
    def dense_columns(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dense)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.id_columns + self.categorical_columns + self.dense_columns

    @property
    def vocab_sizes(self) -> dict[str, int]:
        return {name: len(v) + 2 for name, v in self.vocabularies.items()}

    @property
    def dense_width(self) -> int:
        return 2 * len(self.dense)

    @classmethod
    def fit(cls, frame: pd.DataFrame, id_buckets: Mapping[str, int],
            features: Sequence[FeatureSpec] = FEATURES) -> FeatureEncoder:
        """Fit vocabularies and statistics on ``frame`` (the training split).

        Statistics use finite, non-default values only, so a burst of NaN or sentinels in the
        training data does not move them.
        """
        _require(frame, [f.name for f in features])
        vocabularies: dict[str, tuple[str, ...]] = {}
        dense: list[DenseStat] = []
        buckets = {}
        for spec in features:
            col = frame[spec.name]
            if spec.kind == "id":
                buckets[spec.name] = int(id_buckets.get(spec.name, 1000))
            elif spec.kind == "category":
                seen = col.dropna().astype(str)
                vocabularies[spec.name] = tuple(sorted(set(seen) - {str(spec.default)}))
            else:
                x = col.to_numpy(dtype=np.float64, na_value=np.nan)
                keep = np.isfinite(x) & (x != float(spec.default))
                log = _is_heavy_tailed(spec)
                v = _signed_log1p(x[keep]) if log else x[keep]
                mean = float(v.mean()) if v.size else 0.0
                std = float(v.std()) if v.size > 1 else 1.0
                dense.append(DenseStat(spec.name, float(spec.default), log, mean,
                                       std if std > 1e-8 else 1.0))
        return cls(buckets, vocabularies, tuple(dense))

    def encode(self, frame: pd.DataFrame) -> FeatureBatch:
        """Encode raw feature columns of ``frame`` (any extra columns are ignored).

        Raises:
            FeatureFrameError: a feature column is missing or a numeric one is not numeric.
        """
        _require(frame, self.columns)
        ids = np.stack([self._hash(frame[c], self.id_buckets[c]) for c in self.id_columns], 1) \
            if self.id_columns else np.zeros((len(frame), 0), np.int64)
        cats = np.stack([self._vocab_index(frame[c], c) for c in self.categorical_columns], 1) \
            if self.categorical_columns else np.zeros((len(frame), 0), np.int64)
        values, flags = [], []
        for stat in self.dense:
            try:
                x = frame[stat.name].to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise FeatureFrameError(
                    f"column {stat.name!r}: expected numbers, found dtype {frame[stat.name].dtype} "
                    f"({len(frame)} rows)") from exc
            is_default = x == stat.default
            v = _signed_log1p(x) if stat.log else x
            z = (v - stat.mean) / stat.std
            values.append(np.where(is_default, 0.0, z))
            flags.append(is_default.astype(np.float64))
        dense = np.stack(values + flags, 1).astype(np.float32) if self.dense \
            else np.zeros((len(frame), 0), np.float32)
        return FeatureBatch(torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)),
                            torch.from_numpy(np.ascontiguousarray(cats, dtype=np.int64)),
                            torch.from_numpy(np.ascontiguousarray(dense)))

    def _hash(self, col: pd.Series, buckets: int) -> np.ndarray:
        values = col.astype(object).where(col.notna(), "unknown").astype(str).to_numpy(object)
        h = pd.util.hash_array(values, hash_key=HASH_KEY, categorize=True)
        out = (1 + (h % np.uint64(max(buckets - 1, 1)))).astype(np.int64)
        out[values == "unknown"] = 0
        return out

    def _vocab_index(self, col: pd.Series, name: str) -> np.ndarray:
        lookup = self._lookup.get(name)
        if lookup is None:
            lookup = {v: i + 2 for i, v in enumerate(self.vocabularies[name])}
            self._lookup[name] = lookup
        values = col.astype(object).where(col.notna(), "unknown").astype(str)
        return values.map(lambda v: lookup.get(v, UNKNOWN if v == "unknown" else UNSEEN)) \
            .to_numpy(np.int64)

    def to_json(self) -> dict[str, Any]:
        return {
            "id_buckets": dict(self.id_buckets),
            "hash_key": HASH_KEY,
            "vocabularies": {k: list(v) for k, v in self.vocabularies.items()},
            "dense": [vars(d) for d in self.dense],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FeatureEncoder:
        return cls(dict(doc["id_buckets"]),
                   {k: tuple(v) for k, v in doc["vocabularies"].items()},
                   tuple(DenseStat(**d) for d in doc["dense"]))


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FeatureFrameError(
            f"expected feature columns {missing} in the frame ({len(frame)} rows); found "
            f"{sorted(map(str, frame.columns))}")
