"""Fixtures of the evaluation tests: one faulted warehouse and one untrained model directory.

The warehouse has ``serving_default`` on ``approval_odds`` on its last day (2026-10-24) only, so
the holdout days (every task matured) are clean and the last day carries the skew.
"""

from __future__ import annotations

import datetime as dt

import pytest

FAULT = "serving_default:feature=approval_odds"
LAST = dt.date(2026, 10, 24)
AS_OF = dt.date(2026, 10, 25)


@pytest.fixture(scope="session")
def skewed_warehouse(warehouse) -> str:
    """24 days from 2026-10-01, 2000 impressions a day, approval_odds served as 0.0 on the last."""
    return warehouse(FAULT, per_day=2000)


@pytest.fixture(scope="session")
def untrained_model_dir(skewed_warehouse, tmp_path_factory):
    """A real model directory whose network was never trained: a deliberately worse model."""
    import torch

    from funnelguard.warehouse import TASKS, connect
    from model.artifacts import build_net, save_model
    from model.config import TrainConfig
    from model.encoding import FeatureEncoder
    from model.trainset import build_training_set

    engine = connect(skewed_warehouse)
    ts = build_training_set(engine, AS_OF)
    engine.dispose()
    config = TrainConfig().replace(model={"trunk": [8], "embedding_dim": 4, "dense_dim": 8,
                                          "head_hidden": 0,
                                          "id_buckets": {"user_id": 64, "item_id": 16,
                                                         "merchant_id": 8}})
    train = ts.train
    encoder = FeatureEncoder.fit(train, config.model.id_buckets)
    base_rates = {t: float(train.loc[train[f"mask_{t}"], f"label_{t}"].mean()) for t in TASKS}
    torch.manual_seed(0)
    net = build_net(config, encoder, base_rates)
    out = tmp_path_factory.mktemp("models") / "untrained"
    return save_model(out, net, encoder, config, base_rates=base_rates,
                      description=ts.description, as_of=AS_OF.isoformat(), version="untrained")
