"""The training job as a plain function of the command layer (``funnelguard.commands.JOBS``).

:func:`run_train` is what ``funnelguard train`` and the nightly DAG's training task both call:
project, warehouse engine and as-of date in, a :class:`~funnelguard.findings.RunResult` out.
The heads are the project's funnel stages (the labels contract's ``maturityWindows``, in
order) or the subset ``model.tasks`` picks; the encoder is built from the features contract;
the training set's key and partition columns are the contracts'. Storing the result, ``--json``
and the exit code are the edge's (:func:`funnelguard.commands.execute`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from funnelguard.findings import RunResult
    from funnelguard.project import Project
    from model.config import TrainConfig

__all__ = ["run_train", "config_for"]


def config_for(project: Project, config: str | Path | TrainConfig | None = None) -> TrainConfig:
    """The training config of a run, bound to the project's stages and features.

    Args:
        project: the project (its ``defaults.model_config`` is used when ``config`` is None).
        config: a config file, a loaded config, or None (the project's, else the built-in).

    Raises:
        ConfigError: the file is bad, or names stages, tasks or id columns the project lacks.
    """
    from model.config import TrainConfig, bind_config, load_config

    if isinstance(config, TrainConfig):
        cfg, where = config, "config"
    elif config is not None:
        cfg, where = load_config(config), str(config)
    elif project.defaults.get("model_config"):
        path = project.defaults["model_config"]
        cfg = load_config(path, flag=f"defaults.model_config of project {project.path}")
        where = f"{path} (defaults.model_config of project {project.path})"
    else:
        cfg, where = TrainConfig(), "the built-in config"
    return bind_config(cfg, project.tasks, project.feature_specs("offline"), where=where)


def run_train(project: Project, engine: Engine, as_of: dt.date | str, *, out_dir: str | Path,
              config: str | Path | TrainConfig | None = None,
              store_url: str | None = None, audit: bool = True) -> RunResult:
    """Build the training set as of ``as_of`` and train the funnel model with the guard.

    Args:
        project: the project whose contracts name the tables, stages and features.
        engine: the warehouse.
        as_of: knowledge at this date's 00:00 UTC (a date or ``YYYY-MM-DD``).
        out_dir: the model directory (and checkpoints, TensorBoard events, forensics).
        config: a config file or a loaded config; None: ``defaults.model_config`` of the
            project, else the built-in config.
        store_url: where ``fg_training_runs`` / ``fg_models`` are recorded (None: nowhere).
        audit: audit the training set first (:mod:`model.audit`); False: ``--no-audit``.

    Returns:
        A RunResult (command ``train``, partition the as-of date): a ``training_guard``
        finding (``clean`` or the anomaly), on a stop a ``triage`` finding; artifacts
        ``model_dir`` or ``bundle``.

    Raises:
        ConfigError: a bad config, or one naming a stage the project does not have (exit 2).
        InputError: a missing table or column, no matured day for the holdout, ``out_dir``
            a regular file (checked before the training set is built) (exit 2).
    """
    from funnelguard.output_paths import expect_folder
    from funnelguard.warehouse import parse_date
    from model.job import run_training
    from model.trainset import build_training_set

    day = parse_date(as_of, flag="--as-of")
    out_dir = expect_folder("--out", out_dir, "a model folder")  # before the training set
    cfg = config_for(project, config)
    training_set = build_training_set(project, engine, day, seed=cfg.run.seed,
                                      tasks=cfg.model.tasks)
    return run_training(training_set, out_dir, cfg, project=project, store_url=store_url,
                        engine=engine, audit=audit)
