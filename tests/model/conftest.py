"""Fixtures of the model tests: tiny configs and synthetic training sets.

Torch runs on one thread here: the CPU is shared and small ops on two contended threads are
several times slower than on one. Training sets are TrainingSet-shaped synthetic frames
(``model.synthetic``) unless a test needs the simulated warehouse (``warehouse`` fixture) or the
second project (``marketplace``, tests/byow). ``TINY`` sizes the packaged demo's ids;
``TINY_ANY`` is the same config for any project (every id gets ``default_id_buckets``).
"""

from __future__ import annotations

import functools

import pytest

TINY = {
    "model": {"trunk": [32, 16], "embedding_dim": 4, "head_hidden": 8, "dense_dim": 8,
              "id_buckets": {"user_id": 500, "item_id": 100, "merchant_id": 50}},
    "optim": {"batch_size": 256, "epochs": 1},
    "run": {"progress": False, "tensorboard": False, "checkpoint_every": 0},
    "guard": {"probe_every": 5},
}
TINY_ANY = {**TINY, "model": {k: v for k, v in TINY["model"].items() if k != "id_buckets"}
            | {"default_id_buckets": 100}}


@functools.cache
def demo_project():
    """The packaged demo project (its contracts name the synthetic sets' features)."""
    from funnelguard.project import PACKAGED_PROJECT, load_project

    return load_project(PACKAGED_PROJECT)


def demo_features():
    """The packaged demo's model features (``Project.feature_specs("offline")``)."""
    return demo_project().feature_specs("offline")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(*, project=None, **sections):
    """The tiny config with some sections' fields changed, bound to a project's stages.

    Args:
        project: the project (None: the packaged demo, with ``TINY``'s id buckets).
    """
    from model.config import bind_config, config_from_dict

    base = TINY if project is None else TINY_ANY
    merged = {k: dict(v) for k, v in base.items()}
    for name, changes in sections.items():
        merged.setdefault(name, {}).update(changes)
    project = project or demo_project()
    return bind_config(config_from_dict(merged), project.tasks, project.feature_specs("offline"))


@pytest.fixture(scope="session")
def synth():
    """A 6000-row synthetic training set (seed 0)."""
    from model.synthetic import synthetic_training_set

    return synthetic_training_set(6000, seed=0, ids=2000, days=20)
