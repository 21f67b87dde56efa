"""The multi-task funnel model: network, guarded training, forensic bundle and triage.

Public surface (imported lazily so ``funnelguard --help`` never loads torch):
``load_model(dir) -> FunnelModel`` (``predict(frame) -> {task: probabilities}``),
``FunnelModel`` (``tasks``, ``feature_names``, ``features``: the directory describes itself),
``save_model``, ``TrainConfig``, ``load_config``, ``bind_config``, ``fit``, ``run_training`` and
``run_train(project, engine, as_of, *, out_dir, config=None, store_url=None)``, the command
layer's training job (heads = the project's stages, encoder = its features contract).
The training-set builder is ``model.trainset`` and the evaluation lives in
``model.evaluation``; docs/model.md describes the model directory and the guard.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["load_model", "save_model", "FunnelModel", "TrainConfig", "load_config",
           "bind_config", "fit", "run_training", "run_train"]

_WHERE = {
    "load_model": "model.artifacts",
    "save_model": "model.artifacts",
    "FunnelModel": "model.artifacts",
    "TrainConfig": "model.config",
    "load_config": "model.config",
    "bind_config": "model.config",
    "run_train": "model.commands",
    "fit": "model.training",
    "run_training": "model.job",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
