"""Fixtures of the evaluation tests: faulted warehouses and untrained model directories.

The packaged warehouse has ``serving_default`` on ``approval_odds`` on its last day (2026-10-24)
only, so the holdout days (every stage matured) are clean and the last day carries the skew.
The second project (``marketplace_faulted``, tests/byow) has its own online fault on its last
day: ``quoted_apr`` stuck at its sentinel for 40 % of ``channel = 'app'`` rows.
"""

from __future__ import annotations

import datetime as dt

import pytest

FAULT = "serving_default:feature=approval_odds"
LAST = dt.date(2026, 10, 24)
AS_OF = dt.date(2026, 10, 25)
SMALL_NET = {"trunk": [8], "embedding_dim": 4, "dense_dim": 8, "head_hidden": 0}


def untrained_model(project, warehouse_url, as_of, out, **model):
    """A real model directory of ``project`` whose network was never trained (a worse model)."""
    import torch

    from funnelguard.warehouse import connect
    from model.artifacts import build_net, save_model
    from model.config import TrainConfig, bind_config
    from model.encoding import FeatureEncoder
    from model.trainset import build_training_set

    engine = connect(warehouse_url)
    ts = build_training_set(project, engine, as_of)
    engine.dispose()
    specs = project.feature_specs("offline")
    config = bind_config(TrainConfig().replace(model={**SMALL_NET, **model}), project.tasks,
                         specs)
    train = ts.train
    encoder = FeatureEncoder.fit(train, config.model.id_buckets, specs,
                                 default_buckets=config.model.default_id_buckets)
    base_rates = {t: float(train.loc[train[f"mask_{t}"], f"label_{t}"].mean())
                  for t in ts.tasks}
    torch.manual_seed(0)
    net = build_net(config, encoder, base_rates)
    return save_model(out, net, encoder, config, base_rates=base_rates,
                      description=ts.description, as_of=as_of.isoformat(), version="untrained")


@pytest.fixture(scope="session")
def demo_project():
    from funnelguard.project import PACKAGED_PROJECT, load_project

    return load_project(PACKAGED_PROJECT)


@pytest.fixture(scope="session")
def skewed_warehouse(warehouse) -> str:
    """24 days from 2026-10-01, 2000 impressions a day, approval_odds served as 0.0 on the last."""
    return warehouse(FAULT, per_day=2000)


@pytest.fixture(scope="session")
def untrained_model_dir(demo_project, skewed_warehouse, tmp_path_factory):
    """A packaged-project model directory whose network was never trained."""
    out = tmp_path_factory.mktemp("models") / "untrained"
    return untrained_model(demo_project, skewed_warehouse, AS_OF, out,
                           id_buckets={"user_id": 64, "item_id": 16, "merchant_id": 8})


@pytest.fixture(scope="session")
def marketplace_project(marketplace):
    from funnelguard.project import load_project

    return load_project(marketplace.project_path)


@pytest.fixture(scope="session")
def marketplace_faulted_project(marketplace_faulted):
    from funnelguard.project import load_project

    return load_project(marketplace_faulted.project_path)


@pytest.fixture(scope="session")
def marketplace_model_dir(marketplace, marketplace_project, tmp_path_factory):
    """An untrained model directory of the second project (its stages, its features)."""
    out = tmp_path_factory.mktemp("models") / "marketplace-untrained"
    return untrained_model(marketplace_project, marketplace.warehouse_url, marketplace.as_of,
                           out, default_id_buckets=32)
