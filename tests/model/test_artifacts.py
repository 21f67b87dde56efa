"""Model directory, load_model / predict, config files: round trips and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from funnelguard.errors import InputError
from model.artifacts import MODEL_FILES, build_net, load_model, save_model
from model.config import load_config
from model.encoding import FeatureEncoder
from model.errors import ConfigError, ModelDirError
from tests.model.conftest import tiny_config


def _saved(tmp_path, synth, rate=None, **model):
    cfg = tiny_config(model=model)
    enc = FeatureEncoder.fit(synth.frame, cfg.model.id_buckets, synth.features)
    torch.manual_seed(0)
    net = build_net(cfg, enc, {"click": 0.05, "application": 0.02, "conversion": 0.005,
                               "approval": 0.003})
    return save_model(tmp_path / "m", net, enc, cfg, base_rates={"click": 0.05},
                      description={"rows": 1}, as_of="2026-10-25", downsample_rate=rate), net, enc


def test_round_trip_predicts_the_same_probabilities(tmp_path, synth):
    path, net, enc = _saved(tmp_path, synth, esmm=True)
    assert all((path / f).is_file() for f in MODEL_FILES)
    model = load_model(path)
    frame = synth.frame.head(50)
    scores = model.predict(frame)
    net.eval()  # as predict scores: no id dropout
    with torch.no_grad():
        expected = torch.sigmoid(net(enc.encode(frame))["approval"].double()).numpy()
    assert set(scores) == {"click", "application", "conversion", "approval"}
    assert scores["approval"].shape == (50,) and scores["approval"].dtype == np.float64
    np.testing.assert_allclose(scores["approval"], expected, rtol=1e-6)
    assert json.loads((path / "training_set.json").read_text()) == {"rows": 1}
    assert model.feature_importance() is None and model.downsample_rate == 1.0


def test_predict_undoes_negative_downsampling(tmp_path, synth):
    path, *_ = _saved(tmp_path, synth, rate=0.25)
    model = load_model(path)
    raw = dict(model.manifest)
    model.manifest["downsample_rate"] = 1.0
    uncorrected = model.predict(synth.frame.head(20))
    model.manifest.update(raw)
    corrected = model.predict(synth.frame.head(20))
    p, c = uncorrected["click"], uncorrected["click"]
    np.testing.assert_allclose(corrected["click"], p * 0.25 / (1 - 0.75 * c), rtol=1e-9)
    q = uncorrected["approval"]
    np.testing.assert_allclose(corrected["approval"], q * 0.25 / (1 - 0.75 * c), rtol=1e-9)


def test_missing_model_file_is_named(tmp_path, synth):
    path, *_ = _saved(tmp_path, synth)
    (path / "encoder.json").unlink()
    with pytest.raises(ModelDirError, match=r"missing \['encoder.json'\]") as info:
        load_model(path)
    assert isinstance(info.value, InputError)
    with pytest.raises(ModelDirError, match="found nothing at"):
        load_model(tmp_path / "nope")


def test_config_file_errors_name_file_and_key(tmp_path):
    bad = tmp_path / "train.yaml"
    bad.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"train.yaml: unknown key\(s\) \['learning_rate'\] in "
                                          r"section 'optim'"):
        load_config(bad)
    bad.write_text("guard:\n  loss_spike_z: high\n")
    with pytest.raises(ConfigError, match=r"guard.loss_spike_z expected a number, found 'high'"):
        load_config(bad)
    bad.write_text("optim:\n  precision: fp8\n")
    with pytest.raises(ConfigError, match=r"optim.precision expected one of"):
        load_config(bad)
    with pytest.raises(ConfigError, match="found nothing at"):
        load_config(tmp_path / "missing.yaml")
    good = tmp_path / "ok.json"
    good.write_text(json.dumps({"model": {"trunk": [8]}, "optim": {"lr": 0.01}}))
    cfg = load_config(good)
    assert cfg.model.trunk == (8,) and cfg.optim.lr == 0.01
