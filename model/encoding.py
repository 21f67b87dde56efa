"""Raw feature columns to model tensors, with statistics fitted on the training split.

The features are the project's (``Project.feature_specs("offline")``: name, kind, default,
range, categories, from the features contract). The encoder is saved in the model directory
(``encoder.json``, the feature specs included) and reused at serving, so the normalization
statistics and vocabularies cannot drift apart between training and scoring, and a loaded
model knows its features without the project:

- high-cardinality ids (``kind == "id"``) hash into ``id_buckets[name]`` buckets with a fixed
  key (``pandas.util.hash_array``, stable across processes); bucket 0 is the id's default
  (the contract's sentinel, and a missing value);
- categoricals map through a vocabulary: 0 is the default (the sentinel, or missing), 1 an
  unseen value, 2.. the values seen in training;
- numeric features become two dense columns: the standardized value (heavy-tailed unbounded
  features through a signed ``log1p`` first; the default sentinel becomes 0.0) and an
  ``is_default`` indicator, so the sentinel is handled explicitly instead of as a number.

"Is the default" follows :func:`contracts.spec.is_default_value`: numbers compare as floats
with the default, other values as strings.

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

from funnelguard.warehouse import FeatureSpec
from model.errors import FeatureFrameError

__all__ = ["FeatureBatch", "DenseStat", "FeatureEncoder", "HASH_KEY"]

HASH_KEY = "funnelguard-ids0"  # 16 characters: pandas' siphash key
UNKNOWN, UNSEEN = 0, 1
MISSING = "unknown"  # how a missing (null) id or category is hashed / looked up


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
    default: float | None
    log: bool
    mean: float
    std: float

    def is_default(self, x: np.ndarray) -> np.ndarray:
        """Vectorised :func:`contracts.spec.is_default_value` (float equality; no default: none)."""
        if self.default is None:
            return np.zeros(x.shape, bool)
        return x == float(self.default)


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.sign(x) * np.log1p(np.abs(x))


def _is_heavy_tailed(spec: FeatureSpec) -> bool:
    return spec.low is not None and spec.low >= 0 and spec.high is None


def _text_default(spec: FeatureSpec) -> str:
    return MISSING if spec.default is None else str(spec.default)


def spec_to_json(spec: FeatureSpec) -> dict[str, Any]:
    return {"name": spec.name, "kind": spec.kind, "default": spec.default, "low": spec.low,
            "high": spec.high, "categories": list(spec.categories)}


def spec_from_json(doc: Mapping[str, Any]) -> FeatureSpec:
    return FeatureSpec(doc["name"], doc["kind"], doc.get("default"), doc.get("low"),
                       doc.get("high"), tuple(doc.get("categories") or ()))


@dataclass(frozen=True)
class FeatureEncoder:
    """Fitted encoding of the feature columns (see the module docstring).

    Attributes:
        id_buckets: hashed buckets per id column (bucket 0 is the default).
        vocabularies: per categorical, the values seen in training (index = position + 2).
        dense: the numeric features' standardization, in column order.
        features: the feature specs it was fitted with (the contract's), in contract order.
    """

    id_buckets: Mapping[str, int]
    vocabularies: Mapping[str, tuple[str, ...]]
    dense: tuple[DenseStat, ...]
    features: tuple[FeatureSpec, ...] = ()
    _lookup: dict[str, dict[str, int]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The raw feature columns, in the contract's order (``columns`` is the tensor order)."""
        return tuple(f.name for f in self.features) if self.features else self.columns

    def _default_text(self, name: str) -> str:
        spec = next((f for f in self.features if f.name == name), None)
        return MISSING if spec is None else _text_default(spec)

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
            features: Sequence[FeatureSpec], *, default_buckets: int = 1000) -> FeatureEncoder:
        """Fit vocabularies and statistics on ``frame`` (the training split).

        Statistics use finite, non-default values only, so a burst of NaN or sentinels in the
        training data does not move them.

        Args:
            frame: rows with every feature column.
            id_buckets: buckets per id column (``model.id_buckets``).
            features: the project's feature specs (``Project.feature_specs("offline")``).
            default_buckets: buckets of an id column ``id_buckets`` does not name.

        Raises:
            FeatureFrameError: a feature column is missing, or there are no features.
        """
        features = tuple(features)
        if not features:
            raise FeatureFrameError("expected at least one feature spec (role feature, id or "
                                    "category in the features contract), found none")
        _require(frame, [f.name for f in features])
        vocabularies: dict[str, tuple[str, ...]] = {}
        dense: list[DenseStat] = []
        buckets = {}
        for spec in features:
            col = frame[spec.name]
            if spec.kind == "id":
                buckets[spec.name] = int(id_buckets.get(spec.name, default_buckets))
            elif spec.kind == "category":
                seen = col.dropna().astype(str)
                vocabularies[spec.name] = tuple(sorted(set(seen) - {_text_default(spec), MISSING}))
            else:
                x = _numbers(frame, spec.name)
                default = None if spec.default is None else float(spec.default)
                stat = DenseStat(spec.name, default, _is_heavy_tailed(spec), 0.0, 1.0)
                keep = np.isfinite(x) & ~stat.is_default(x)
                v = _signed_log1p(x[keep]) if stat.log else x[keep]
                mean = float(v.mean()) if v.size else 0.0
                std = float(v.std()) if v.size > 1 else 1.0
                dense.append(DenseStat(spec.name, default, stat.log, mean,
                                       std if std > 1e-8 else 1.0))
        return cls(buckets, vocabularies, tuple(dense), features)

    def encode(self, frame: pd.DataFrame) -> FeatureBatch:
        """Encode raw feature columns of ``frame`` (any extra columns are ignored).

        Raises:
            FeatureFrameError: a feature column is missing or a numeric one is not numeric.
        """
        _require(frame, self.columns)
        ids = np.stack([self._hash(frame[c], self.id_buckets[c], self._default_text(c))
                        for c in self.id_columns], 1) \
            if self.id_columns else np.zeros((len(frame), 0), np.int64)
        cats = np.stack([self._vocab_index(frame[c], c) for c in self.categorical_columns], 1) \
            if self.categorical_columns else np.zeros((len(frame), 0), np.int64)
        values, flags = [], []
        for stat in self.dense:
            x = _numbers(frame, stat.name)
            is_default = stat.is_default(x)
            v = _signed_log1p(x) if stat.log else x
            z = (v - stat.mean) / stat.std
            values.append(np.where(is_default, 0.0, z))
            flags.append(is_default.astype(np.float64))
        dense = np.stack(values + flags, 1).astype(np.float32) if self.dense \
            else np.zeros((len(frame), 0), np.float32)
        return FeatureBatch(torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)),
                            torch.from_numpy(np.ascontiguousarray(cats, dtype=np.int64)),
                            torch.from_numpy(np.ascontiguousarray(dense)))

    def _hash(self, col: pd.Series, buckets: int, default: str) -> np.ndarray:
        values = col.astype(object).where(col.notna(), MISSING).astype(str).to_numpy(object)
        h = pd.util.hash_array(values, hash_key=HASH_KEY, categorize=True)
        out = (1 + (h % np.uint64(max(buckets - 1, 1)))).astype(np.int64)
        out[(values == MISSING) | (values == default)] = 0
        return out

    def _vocab_index(self, col: pd.Series, name: str) -> np.ndarray:
        lookup = self._lookup.get(name)
        if lookup is None:
            lookup = {v: i + 2 for i, v in enumerate(self.vocabularies[name])}
            self._lookup[name] = lookup
        default = self._default_text(name)
        values = col.astype(object).where(col.notna(), MISSING).astype(str)
        return values.map(lambda v: lookup.get(v, UNKNOWN if v in (MISSING, default) else UNSEEN)) \
            .to_numpy(np.int64)

    def to_json(self) -> dict[str, Any]:
        return {
            "id_buckets": dict(self.id_buckets),
            "hash_key": HASH_KEY,
            "vocabularies": {k: list(v) for k, v in self.vocabularies.items()},
            "dense": [vars(d) for d in self.dense],
            "features": [spec_to_json(f) for f in self.features],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FeatureEncoder:
        """Read ``encoder.json`` (one written before feature specs were saved has none)."""
        return cls(dict(doc["id_buckets"]),
                   {k: tuple(v) for k, v in doc["vocabularies"].items()},
                   tuple(DenseStat(**d) for d in doc["dense"]),
                   tuple(spec_from_json(f) for f in doc.get("features", ())))


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    try:
        return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise FeatureFrameError(
            f"column {name!r}: expected numbers, found dtype {frame[name].dtype} "
            f"({len(frame)} rows)") from exc


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FeatureFrameError(
            f"expected feature columns {missing} in the frame ({len(frame)} rows); found "
            f"{sorted(map(str, frame.columns))}")
