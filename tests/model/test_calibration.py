"""Calibration of the trained model: masked labels, the learning-rate schedule, intercept refit.

Known truth comes from ``model.synthetic`` (each row's true probability per task). The failure
these guard against: a model whose mean prediction was whatever Adam's last noisy iterate gave
(0.3x-3.5x of a rare task's rate on the simulator), and labels of immature rows leaking in.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.model.conftest import tiny_config


@pytest.fixture(scope="module")
def matured_set():
    """60 days so that most rows of the 14-day tasks have matured (enough positives)."""
    from model.synthetic import synthetic_training_set

    return synthetic_training_set(30000, seed=3, ids=3000, days=60)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, matured_set):
    """The default (shared-bottom) tiny model trained on ``matured_set``, once per module."""
    return _train(tmp_path_factory.mktemp("calibrated"), matured_set, optim={"epochs": 2})


def _train(tmp_path, ts, **sections):
    from model.artifacts import load_model
    from model.job import run_training

    result = run_training(ts, tmp_path, tiny_config(**sections))
    assert result.status == "pass", [f.message for f in result.failures]
    return load_model(tmp_path)


def test_solve_intercept_shift_golden_values():
    from model.intercepts import solve_intercept_shift

    # p = sigmoid(0 + d) on 1000 rows must sum to 200: d = logit(0.2).
    assert solve_intercept_shift(np.zeros(1000), 200.0) == pytest.approx(np.log(0.2 / 0.8), abs=1e-9)
    # Chained (ESMM): 0.5 * sigmoid(d) summed over 1000 rows = 100 -> sigmoid(d) = 0.2.
    prior = np.full(1000, np.log(0.5))
    assert solve_intercept_shift(np.zeros(1000), 100.0, log_prior=prior) == \
        pytest.approx(np.log(0.2 / 0.8), abs=1e-9)


def test_lr_schedule_is_a_pure_function_of_the_step(synth):
    from model.artifacts import build_net
    from model.batches import tensors_for
    from model.encoding import FeatureEncoder
    from model.training import Trainer

    train = synth.frame[synth.frame["split"] == "train"]
    enc = FeatureEncoder.fit(train, tiny_config().model.id_buckets, synth.features)
    data = tensors_for(train, enc, tiny_config().model.tasks)
    for schedule, half in (("linear", 0.5), ("cosine", 0.5), ("constant", 1.0)):
        cfg = tiny_config(optim={"lr_schedule": schedule, "max_steps": 10})
        trainer = Trainer(build_net(cfg, enc, data.base_rates()), data, cfg)
        assert trainer.lr_factor(0) == 1.0
        assert trainer.lr_factor(5) == pytest.approx(half)
        trainer.step(0)
        trainer.step(5)
        dense = trainer.optimizers[0].param_groups[0]
        sparse = trainer.optimizers[1].param_groups[0]
        assert dense["lr"] == pytest.approx(cfg.optim.lr * half)
        assert sparse["lr"] == pytest.approx(cfg.optim.sparse_lr * half)
    with pytest.raises(Exception, match="optim.lr_schedule expected one of"):
        tiny_config(optim={"lr_schedule": "step"})


def test_labels_under_a_false_mask_change_nothing(tmp_path, synth):
    """Early positives of immature rows (label 1, mask False) must not reach the loss, the
    base-rate bias init or the intercept refit: setting every masked label to 1 gives the very
    same weights."""
    frame = synth.frame.copy()
    for t in synth.tasks:
        frame.loc[~frame[f"mask_{t}"], f"label_{t}"] = 1.0
    leaked = dataclasses.replace(synth, frame=frame)
    a = _train(tmp_path / "a", synth)
    b = _train(tmp_path / "b", leaked)
    assert a.manifest["base_rates"] == b.manifest["base_rates"]
    assert a.manifest["intercept_shift"] == b.manifest["intercept_shift"]
    for name, tensor in a.net.state_dict().items():
        assert torch.equal(tensor, b.net.state_dict()[name]), name


@pytest.mark.parametrize("esmm", [False, True])
def test_mean_prediction_matches_the_observed_rate_on_known_rows(tmp_path, matured_set, trained,
                                                                 esmm):
    model = _train(tmp_path, matured_set, model={"esmm": True}, optim={"epochs": 2}) if esmm \
        else trained
    frame = matured_set.frame
    train = frame[frame["split"] == "train"]
    scores = model.predict(train)
    shifts = model.manifest["intercept_shift"]
    for t in matured_set.tasks:
        known = train[f"mask_{t}"].to_numpy()
        observed = train.loc[known, f"label_{t}"].mean()
        assert scores[t][known].mean() / observed == pytest.approx(1.0, abs=1e-4), (t, shifts)


def test_holdout_mean_prediction_is_near_the_truth(matured_set, trained):
    """On rows never trained on, the mean prediction is within sampling noise of the true mean
    probability (tolerance ~3 standard errors of the task's known training positives)."""
    model = trained
    frame = matured_set.frame
    hold = (frame["split"] == "holdout").to_numpy()
    scores = model.predict(frame.loc[hold])
    known_pos = {t: frame.loc[~hold & frame[f"mask_{t}"], f"label_{t}"].sum()
                 for t in matured_set.tasks}
    for t in matured_set.tasks:
        ratio = scores[t].mean() / matured_set.truth[t][hold].mean()
        tolerance = max(0.05, 3 / np.sqrt(known_pos[t]))
        assert abs(ratio - 1) <= tolerance, (t, ratio, tolerance, known_pos[t])
