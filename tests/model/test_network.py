"""The network, its options, the losses and the encoder: shapes and golden values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from model.artifacts import build_net
from model.batches import tensors_for
from model.config import TrainConfig
from model.encoding import FeatureEncoder
from model.losses import TaskWeighting, masked_bce
from model.network import chain_logits, log1mexp
from tests.model.conftest import demo_features, tiny_config

BASE = {"click": 0.04, "application": 0.01, "conversion": 0.004, "approval": 0.002}


@pytest.fixture(scope="module")
def encoded(synth):
    train = synth.frame[synth.frame["split"] == "train"]
    enc = FeatureEncoder.fit(train, tiny_config().model.id_buckets, synth.features)
    return enc, tensors_for(train.head(64), enc, synth.tasks)


def test_masked_bce_golden_values():
    z, y = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])
    both = masked_bce(z, y, torch.tensor([True, True]))
    assert both.item() == pytest.approx((math.log(2) + math.log1p(math.exp(2))) / 2, rel=1e-6)
    first = masked_bce(z, y, torch.tensor([True, False]))
    assert first.item() == pytest.approx(math.log(2), rel=1e-6)
    weighted = masked_bce(z, y, torch.tensor([True, False]), pos_weight=3.0)
    assert weighted.item() == pytest.approx(3 * math.log(2), rel=1e-6)
    focal = masked_bce(z, y, torch.tensor([True, False]), focal_gamma=2.0)
    assert focal.item() == pytest.approx(0.25 * math.log(2), rel=1e-6)
    none = masked_bce(z.requires_grad_(), y, torch.tensor([False, False]))
    assert none.item() == 0.0 and none.requires_grad


def test_losses_are_fp32_from_low_precision_logits():
    z = torch.tensor([0.5, -1.0], dtype=torch.bfloat16)
    loss = masked_bce(z, torch.tensor([1.0, 0.0]), torch.tensor([True, True]))
    assert loss.dtype == torch.float32


def test_log1mexp_and_esmm_chain_match_products():
    x = torch.tensor([-1e-4, -0.5, -5.0, -40.0], dtype=torch.float64)
    assert torch.allclose(log1mexp(x), torch.log(1 - torch.exp(x)), rtol=1e-6)
    cond = {"click": torch.tensor([-3.0]), "application": torch.tensor([-1.0]),
            "conversion": torch.tensor([-2.0]), "approval": torch.tensor([0.5])}
    chained = chain_logits(cond, ("click", "application", "conversion", "approval"))
    p = 1.0
    for t in ("click", "application", "conversion", "approval"):
        p *= 1 / (1 + math.exp(-cond[t].item()))
        assert torch.sigmoid(chained[t]).item() == pytest.approx(p, rel=1e-5)
    deep = chain_logits({"a": torch.tensor([-30.0]), "b": torch.tensor([-30.0])}, ("a", "b"))
    assert torch.isfinite(deep["b"]).all() and deep["b"].item() == pytest.approx(-60.0, abs=1e-3)


@pytest.mark.parametrize("model_opts,optim_opts", [
    ({}, {}),
    ({"architecture": "mmoe", "num_experts": 3}, {}),
    ({"esmm": True}, {}),
    ({"head_hidden": 0, "dropout": 0.1}, {"sparse_embeddings": False}),
])
def test_forward_shapes_and_base_rate_biases(encoded, model_opts, optim_opts):
    enc, data = encoded
    cfg = tiny_config(model=model_opts, optim=optim_opts)
    net = build_net(cfg, enc, BASE)
    net.eval()
    out = net(data.features)
    assert set(out) == set(cfg.model.tasks)
    for logits in out.values():
        assert logits.shape == (64,) and logits.dtype == torch.float32
    # Output biases start at the base-rate logits, so the first predictions sit near them.
    mean_p = {t: torch.sigmoid(v).mean().item() for t, v in out.items()}
    for t, rate in BASE.items():
        assert mean_p[t] == pytest.approx(rate, rel=0.35), (t, mean_p[t])
    assert data.features.ids.shape == (64, 3) and data.features.cats.shape == (64, 2)
    assert data.features.dense.shape == (64, 2 * 13)
    sparse = optim_opts.get("sparse_embeddings", True)
    assert all(t.sparse == sparse for t in net.embedding_tables().values())


def test_uncertainty_weighting_learns_log_variances():
    cfg = tiny_config(loss={"weighting": "uncertainty"})
    w = TaskWeighting(cfg.model.tasks, cfg.loss)
    losses = {t: torch.tensor(0.5) for t in cfg.model.tasks}
    total = w(losses)
    assert total.item() == pytest.approx(4 * 0.5)
    total.backward()
    assert w.log_vars.grad is not None and torch.allclose(w.log_vars.grad, torch.full((4,), 0.5))
    fixed = TaskWeighting(cfg.model.tasks, tiny_config(loss={"task_weights": {"click": 2.0}}).loss)
    assert fixed(losses).item() == pytest.approx(2 * 0.5 + 3 * 0.5)


def test_encoder_golden_values_defaults_and_non_finite_pass_through():
    frame = pd.DataFrame({
        "user_id": ["u1", "u2", "unknown", None], "item_id": ["i"] * 4, "merchant_id": ["m"] * 4,
        "credit_score": [600, 700, -1, 650], "credit_utilization": [0.2, 0.4, 0.3, np.inf],
        "annual_income": [1e4, 1e5, -1.0, 5e4], "num_open_accounts": [1, 2, 3, 4],
        "num_recent_inquiries": [0, 1, 0, 1], "account_age_days": [10, 20, 30, 40],
        "days_since_last_visit": [1, 2, 3, 4], "user_ctr_30d": [0.1, 0.0, 0.2, 0.3],
        "item_type": ["card", "mortgage", "unknown", "boat"], "item_apr": [10.0, 20.0, 30.0, 5.0],
        "merchant_approval_rate_90d": [0.5] * 4, "approval_odds": [0.1, 0.2, 0.3, 0.4],
        "hour_of_day": [1, 2, 3, 4], "device_type": ["ios", "web", "android", "ios"],
        "position": [1, 2, 3, 4]})
    enc = FeatureEncoder.fit(frame.head(3), {"user_id": 1000, "item_id": 10, "merchant_id": 10},
                            demo_features())
    batch = enc.encode(frame)
    # Stable hashing (fixed siphash key): the same buckets in every process; default -> 0.
    assert batch.ids[:, 0].tolist() == [491, 954, 0, 0]
    vocab = enc.vocabularies["item_type"]
    assert vocab == ("card", "mortgage")
    assert batch.cats[:, enc.categorical_columns.index("item_type")].tolist() == [2, 3, 0, 1]
    cols = enc.dense_columns
    i = cols.index("credit_score")
    # mean and std over the non-default values 600, 700: 650 and 50.
    assert batch.dense[:, i].tolist() == pytest.approx([-1.0, 1.0, 0.0, 0.0])
    assert batch.dense[:, len(cols) + i].tolist() == [0.0, 0.0, 1.0, 0.0]
    j = cols.index("credit_utilization")
    assert math.isinf(batch.dense[3, j].item())
    assert enc.dense[cols.index("annual_income")].log is True
    round_trip = FeatureEncoder.from_json(enc.to_json())
    assert torch.equal(round_trip.encode(frame).dense, batch.dense)


def test_encoder_names_missing_columns(synth):
    from model.errors import FeatureFrameError

    enc = FeatureEncoder.fit(synth.frame, TrainConfig().model.id_buckets, synth.features)
    with pytest.raises(FeatureFrameError, match=r"expected feature columns \['approval_odds'\]"):
        enc.encode(synth.frame.drop(columns=["approval_odds"]))


def test_row_adam_matches_torch_sparse_adam_and_moves_only_batch_rows():
    from model.optimizers import RowAdam

    torch.manual_seed(0)
    ours, ref = nn.Embedding(300, 4, sparse=True), nn.Embedding(300, 4, sparse=True)
    ref.load_state_dict(ours.state_dict())
    opt, ref_opt = RowAdam(ours.parameters(), lr=1e-2), torch.optim.SparseAdam(ref.parameters(), lr=1e-2)
    before = ours.weight.detach().clone()
    for _ in range(20):
        rows = torch.randint(0, 100, (64,))  # rows 100.. are never in a batch
        for table, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            (table(rows) ** 2).sum().backward()
            o.step()
    assert torch.allclose(ours.weight, ref.weight, atol=1e-6)
    assert torch.equal(ours.weight[100:], before[100:])
    assert opt.state_dict()["state"][0]["step"] == 20
    with pytest.raises(RuntimeError, match="expects sparse gradients"):
        dense = nn.Embedding(10, 2)
        (dense(torch.tensor([1])) ** 2).sum().backward()
        RowAdam(dense.parameters()).step()
