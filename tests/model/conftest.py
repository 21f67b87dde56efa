"""Fixtures of the model tests: tiny configs and synthetic training sets.

Torch runs on one thread here: the CPU is shared and small ops on two contended threads are
several times slower than on one. Training sets are TrainingSet-shaped synthetic frames
(``model.synthetic``) unless a test needs the simulated warehouse (``warehouse`` fixture).
"""

from __future__ import annotations

import pytest

TINY = {
    "model": {"trunk": [32, 16], "embedding_dim": 4, "head_hidden": 8, "dense_dim": 8,
              "id_buckets": {"user_id": 500, "item_id": 100, "merchant_id": 50}},
    "optim": {"batch_size": 256, "epochs": 1},
    "run": {"progress": False, "tensorboard": False, "checkpoint_every": 0},
    "guard": {"probe_every": 5},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**sections):
    """The tiny config with some sections' fields changed."""
    from model.config import config_from_dict

    merged = {k: dict(v) for k, v in TINY.items()}
    for name, changes in sections.items():
        merged.setdefault(name, {}).update(changes)
    return config_from_dict(merged)


@pytest.fixture(scope="session")
def synth():
    """A 6000-row synthetic training set (seed 0)."""
    from model.synthetic import synthetic_training_set

    return synthetic_training_set(6000, seed=0, ids=2000, days=20)
