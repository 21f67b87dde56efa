"""The model directory and the scorer loaded from it.

Layout (``docs/model.md``)::

    <dir>/model.json               manifest: format, version, tasks, features, as_of, base rates,
                                   downsample_rate, the files below
    <dir>/config.json              the full TrainConfig
    <dir>/weights.pt               FunnelNet state_dict (torch.save, loadable weights_only)
    <dir>/encoder.json             the feature specs (name, kind, default, range, categories
                                   from the features contract), id hashing (buckets, key),
                                   vocabularies, normalization stats
    <dir>/training_set.json        the training set's description (TrainingSet.description)
    <dir>/feature_importance.json  slot filled later by model.evaluation (absent until then)

:func:`load_model` returns a :class:`FunnelModel` whose ``predict(frame)`` scores raw feature
columns exactly as the simulator's stand-in production model does (the Scorer protocol). The
directory is self-describing: ``model.tasks`` (the heads, in funnel order) and
``model.feature_names`` / ``model.features`` (the contract's feature specs) need no project.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.config import TrainConfig, config_from_dict
from model.encoding import FeatureEncoder
from model.errors import ConfigError, ModelDirError
from model.network import FunnelNet

__all__ = ["FunnelModel", "save_model", "load_model", "build_net", "MODEL_FILES",
           "FEATURE_IMPORTANCE_FILE", "FORMAT"]

FORMAT = "funnelguard-model/1"
MODEL_FILES = ("model.json", "config.json", "weights.pt", "encoder.json", "training_set.json")
FEATURE_IMPORTANCE_FILE = "feature_importance.json"


def build_net(config: TrainConfig, encoder: FeatureEncoder,
              base_rates: Mapping[str, float]) -> FunnelNet:
    """The network for ``config`` sized by the fitted ``encoder``.

    The heads are ``config.model.tasks`` (bound to a project by :func:`model.config.bind_config`);
    a config that names none takes the tasks of ``base_rates``, in their order.

    Raises:
        ConfigError: neither the config nor the base rates name a task.
    """
    return FunnelNet(config.model, encoder.id_buckets, encoder.vocab_sizes, encoder.dense_width,
                     base_rates, sparse=config.optim.sparse_embeddings)


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    # No sort_keys: the order of id columns and vocabularies is the tensor layout.
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    tmp.replace(path)


@dataclass
class FunnelModel:
    """A trained model ready to score raw feature frames.

    Attributes:
        net: the network, in eval mode.
        encoder: the saved encoder (statistics and vocabularies from training).
        config: the training config.
        manifest: ``model.json``.
        path: the directory it was loaded from (None when built in memory).
    """

    net: FunnelNet
    encoder: FeatureEncoder
    config: TrainConfig
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.net.tasks

    @property
    def features(self):
        """The feature specs it was trained on (``funnelguard.warehouse.FeatureSpec``)."""
        return self.encoder.features

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The raw columns ``predict`` reads, in the features contract's order."""
        return self.encoder.feature_names

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", ""))

    @property
    def downsample_rate(self) -> float:
        """The negative keep-rate a consumer must still correct for: always 1.0.

        :meth:`predict` already returns population-scale probabilities; the training set's
        own rate is ``manifest["downsample_rate"]``.
        """
        return 1.0

    def predict(self, frame, batch_size: int = 65536) -> dict[str, np.ndarray]:
        """Per-task probabilities (float64 arrays, one per row) from raw feature columns.

        When the training set kept only a share ``w`` of its all-negative rows, scores are
        corrected back to the population: ``q = p * w / (1 - (1 - w) * p_first)`` where
        ``p_first`` is the first head's probability (all-negative rows are exactly the rows
        without the funnel's first stage, since outcomes nest). Rows with a non-finite
        feature score NaN: the model does not invent a value.

        Raises:
            FeatureFrameError: a feature column is missing or ill-typed.
        """
        encoded = self.encoder.encode(frame)
        w = float(self.manifest.get("downsample_rate") or 1.0)
        out: dict[str, list[np.ndarray]] = {t: [] for t in self.tasks}
        self.net.eval()
        with torch.no_grad():
            for start in range(0, len(frame), batch_size):
                rows = torch.arange(start, min(start + batch_size, len(frame)))
                logits = self.net(encoded.index(rows))
                for t in self.tasks:
                    out[t].append(torch.sigmoid(logits[t].double()).numpy())
        scores = {t: (np.concatenate(v) if v else np.zeros(0)) for t, v in out.items()}
        if w < 1.0:
            p_any = scores[self.tasks[0]]
            scores = {t: p * w / (1.0 - (1.0 - w) * p_any) for t, p in scores.items()}
        return scores

    def feature_importance(self) -> dict[str, Any] | None:
        """The evaluation's feature importance, once written into the directory."""
        if self.path is None or not (self.path / FEATURE_IMPORTANCE_FILE).exists():
            return None
        return json.loads((self.path / FEATURE_IMPORTANCE_FILE).read_text())


def save_model(out: str | Path, net: FunnelNet, encoder: FeatureEncoder, config: TrainConfig, *,
               base_rates: Mapping[str, float], description: Mapping[str, Any] | None = None,
               downsample_rate: float | None = None, as_of: str | None = None,
               version: str | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """Write a complete model directory (files replaced atomically one by one)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "weights.pt.tmp"
    torch.save(net.state_dict(), tmp)
    tmp.replace(out / "weights.pt")
    if tuple(config.model.tasks) != tuple(net.tasks):  # the directory names its own heads
        config = config.replace(model={"tasks": list(net.tasks)})
    _write_json(out / "config.json", config.to_dict())
    _write_json(out / "encoder.json", encoder.to_json())
    _write_json(out / "training_set.json", dict(description or {}))
    manifest = {
        "format": FORMAT,
        "version": version or f"funnel-{as_of or 'unknown'}",
        "as_of": as_of,
        "tasks": list(net.tasks),
        "features": list(encoder.feature_names),
        "base_rates": {k: float(v) for k, v in base_rates.items()},
        "downsample_rate": float(downsample_rate) if downsample_rate else 1.0,
        "files": list(MODEL_FILES),
        "feature_importance": FEATURE_IMPORTANCE_FILE,
        **dict(extra or {}),
    }
    _write_json(out / "model.json", manifest)
    return out


def _size(file: Path) -> str:
    try:
        n = file.stat().st_size
    except OSError:
        return "unknown size"
    return "empty" if n == 0 else f"{n:,} bytes"


def _read_json(file: Path, expected: str) -> dict[str, Any]:
    """A JSON object file of the model directory, or a ModelDirError naming the file."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelDirError(f"{file}: expected {expected} as JSON text, found bytes that are not "
                            f"UTF-8 ({_size(file)})") from None
    except OSError as exc:
        raise ModelDirError(f"{file}: expected a readable file, found {exc.strerror or exc}"
                            ) from exc
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ModelDirError(f"{file}: expected {expected} as JSON, found nesting too deep to "
                            f"read in a file of {_size(file)}") from None
    except json.JSONDecodeError as exc:
        found = ("an empty file" if not text.strip()
                 else f"invalid JSON ({exc.msg}) in a file of {_size(file)}")
        raise ModelDirError(f"{file}:{exc.lineno}:{exc.colno}: expected {expected} as JSON, "
                            f"found {found}") from None
    if not isinstance(doc, dict):
        raise ModelDirError(f"{file}: expected {expected} (a JSON object), found a JSON "
                            f"{type(doc).__name__}")
    return doc


def _problem(exc: BaseException, *, whole: bool = False) -> str:
    """What went wrong in a few words: the first line (``whole``: every line, joined)."""
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}" if exc.args else "a missing key"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = " ".join(lines) if whole else lines[0]
    return f"{type(exc).__name__}: {text[:500]}"


def _read_weights(file: Path) -> Mapping[str, Any]:
    try:
        with file.open("rb"):
            pass
    except OSError as exc:
        raise ModelDirError(f"{file}: expected a readable file, found {exc.strerror or exc}"
                            ) from exc
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip (OSError, RuntimeError), EOF, pickle
        raise ModelDirError(
            f"{file}: expected the network's state_dict written by torch.save (a zip archive "
            f"loadable with weights_only=True), found a file that does not load "
            f"({_size(file)}; {_problem(exc)}); the file is damaged or incomplete: copy or "
            f"train the model again") from None
    if not isinstance(state, Mapping):
        raise ModelDirError(f"{file}: expected a state_dict (a mapping of parameter names to "
                            f"tensors), found a {type(state).__name__}")
    return state


def load_model(path: str | Path) -> FunnelModel:
    """Load a model directory written by :func:`save_model` (``funnelguard train --out``).

    Every problem names the file and what was wrong with it (empty, not JSON, a missing key,
    a damaged ``weights.pt``, weights that do not fit ``config.json`` / ``encoder.json``).

    Raises:
        ModelDirError: the directory or one of its files is missing or unreadable.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelDirError(f"expected a model directory, found nothing at {path}")
    missing = [f for f in MODEL_FILES if not (path / f).is_file()]
    if missing:
        raise ModelDirError(f"model directory {path}: expected files {list(MODEL_FILES)}, "
                            f"missing {missing}")
    manifest = _read_json(path / "model.json", "the model manifest")
    if manifest.get("format") != FORMAT:
        raise ModelDirError(f"{path / 'model.json'}: expected format {FORMAT!r}, "
                            f"found {manifest.get('format')!r}")
    base_rates = manifest.get("base_rates", {})
    if not isinstance(base_rates, Mapping):
        raise ModelDirError(f"{path / 'model.json'}: expected base_rates as a mapping of task "
                            f"to rate, found a {type(base_rates).__name__}")
    try:
        config = config_from_dict(_read_json(path / "config.json", "the training config"),
                                  where=str(path / "config.json"))
    except ConfigError as exc:  # it names the file and the key
        raise ModelDirError(str(exc)) from None
    encoder_doc = _read_json(path / "encoder.json", "the feature encoder")
    try:
        encoder = FeatureEncoder.from_json(encoder_doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelDirError(f"{path / 'encoder.json'}: expected the feature encoder (id_buckets, "
                            f"vocabularies, dense, features), found {_problem(exc)}") from None
    state = _read_weights(path / "weights.pt")
    try:
        net = build_net(config, encoder, base_rates)
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise ModelDirError(f"{path}: config.json and encoder.json do not describe one network "
                            f"({_problem(exc)})") from None
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
        raise ModelDirError(f"{path / 'weights.pt'}: weights do not match config.json and "
                            f"encoder.json: {_problem(exc, whole=True)}") from None
    net.eval()
    return FunnelModel(net, encoder, config, manifest, path)
