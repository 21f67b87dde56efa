"""What a training run *is*: the model, optimizer, precision and guard settings, as data.

A config file (YAML or JSON, ``--config PATH``) overrides the defaults section by section::

    model:    {architecture: shared_bottom, tasks: [], embedding_dim: 16, trunk: [256, 128],
               esmm: false, id_dropout: 0.5, id_buckets: {}, default_id_buckets: 1000}
    loss:     {weighting: fixed, task_weights: {<stage>: 1.0}, pos_weight: {}, focal_gamma: 0.0}
    optim:    {lr: 0.002, sparse_lr: 0.01, batch_size: 1024, epochs: 2, precision: fp32,
               lr_schedule: linear}
    guard:    {loss_spike_z: 12.0, grad_explosion_factor: 25.0, probe_every: 10, on_anomaly: stop}
    run:      {seed: 0, checkpoint_every: 200, snapshot_every: 16, refit_intercepts: true}

Unknown keys are refused with the file and the key, so a misspelled threshold never silently
falls back to its default. What depends on the project (the stages ``model.tasks`` may pick,
the id features ``model.id_buckets`` may size, the tasks the loss and learning-rate mappings
name) is checked by :func:`bind_config` against the project's contracts before training. Every default here was chosen so the guard never fires on clean
simulated runs (tests/model/test_guard_runs.py runs several seeds).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.errors import ConfigError
from model.guard_config import ON_ANOMALY, GuardConfig

if TYPE_CHECKING:
    from funnelguard.warehouse import FeatureSpec

__all__ = [
    "ModelConfig",
    "LossConfig",
    "OptimConfig",
    "GuardConfig",
    "RunConfig",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "bind_config",
    "PRECISIONS",
    "LR_SCHEDULES",
    "ON_ANOMALY",
]

PRECISIONS = ("fp32", "bf16", "fp16", "fp16-static")
LR_SCHEDULES = ("linear", "cosine", "constant")


@dataclass(frozen=True)
class ModelConfig:
    """The network.

    Attributes:
        architecture: ``shared_bottom`` or ``mmoe``.
        tasks: the heads: a subset of the project's funnel stages (empty: all of them).
            :func:`bind_config` puts them in funnel order, the order ESMM chains them in.
        id_buckets: hashed buckets per high-cardinality id column (an id feature of the
            project; the others get ``default_id_buckets``).
        default_id_buckets: hashed buckets of an id column ``id_buckets`` does not name.
        embedding_dim: width of every embedding (ids and categoricals).
        dense_dim: width of the dense-feature projection.
        trunk: hidden widths of the shared bottom (or of each MMoE expert).
        num_experts: MMoE experts.
        head_hidden: hidden width of each task head (0: a linear head).
        esmm: chain probabilities p(task) = p(previous task) * p(task | previous task).
        dropout: dropout after each trunk layer.
        id_dropout: during training only, each looked-up id (per row and id column) is
            replaced by its table's ``unknown`` bucket (row 0) with this probability, so the
            trunk cannot lean on one id's row and row 0 learns the prior of an unseen id
            (``model.modules.EmbeddingTables``). Off in evaluation and prediction; the draw
            uses the torch RNG, which snapshots and checkpoints carry, so resume and replay
            stay bit-identical. Categoricals are not dropped.
    """

    architecture: str = "shared_bottom"
    tasks: tuple[str, ...] = ()
    id_buckets: Mapping[str, int] = field(default_factory=dict)
    default_id_buckets: int = 1000
    embedding_dim: int = 16
    dense_dim: int = 32
    trunk: tuple[int, ...] = (256, 128)
    num_experts: int = 4
    head_hidden: int = 32
    esmm: bool = False
    dropout: float = 0.0
    id_dropout: float = 0.5


@dataclass(frozen=True)
class LossConfig:
    """Per-task losses, all from logits in fp32.

    Attributes:
        weighting: ``fixed`` (``task_weights``) or ``uncertainty`` (learned, Kendall et al.).
        task_weights: fixed weight per task (missing tasks weigh 1).
        pos_weight: BCE positive-class weight per task (missing: 1).
        focal_gamma: focal-loss exponent (0: plain BCE).
    """

    weighting: str = "fixed"
    task_weights: Mapping[str, float] = field(default_factory=dict)
    pos_weight: Mapping[str, float] = field(default_factory=dict)
    focal_gamma: float = 0.0


@dataclass(frozen=True)
class OptimConfig:
    """Optimizers, schedule and precision.

    Attributes:
        lr: AdamW learning rate of the dense parameters.
        sparse_lr: learning rate of the embedding tables' lazy Adam (``model.optimizers``).
        weight_decay: AdamW weight decay.
        head_lr_scale: per-task multiplier of its head's learning rate.
        batch_size, epochs: the schedule (``max_steps`` caps it when > 0).
        clip_norm: global gradient-norm clipping (the guard sees the norm before clipping).
        precision: ``fp32``; ``bf16`` autocast; ``fp16`` autocast with a dynamic GradScaler
            (the documented recipe); ``fp16-static`` autocast with a fixed loss scale and no
            scaler (refused by nothing, caught by the guard).
        static_loss_scale: the fixed scale of ``fp16-static``.
        sparse_embeddings: sparse gradients + lazy row-wise Adam (False: dense grads, AdamW
            over all).
        lr_schedule: ``linear`` (default) decays every learning rate linearly to 0 over the
            run, ``cosine`` along a half cosine, ``constant`` keeps it. The rate is a pure
            function of the step, so resuming and replaying see the same rates. Without decay
            the last iterate sits at a random point of Adam's noise: the mean prediction of a
            rare task swung between 0.3x and 1.8x of its rate from one 20-step stretch to the
            next (docs/model.md, "Calibration").
        warmup_steps: the first ``warmup_steps`` steps ramp every learning rate linearly from
            ``1 / warmup_steps`` of its value to the full value (then the schedule applies);
            0: no warmup.
    """

    lr: float = 2e-3
    sparse_lr: float = 1e-2
    weight_decay: float = 1e-5
    head_lr_scale: Mapping[str, float] = field(default_factory=dict)
    batch_size: int = 1024
    epochs: int = 2
    max_steps: int = 0
    clip_norm: float = 10.0
    precision: str = "fp32"
    static_loss_scale: float = 2.0 ** 16
    sparse_embeddings: bool = True
    lr_schedule: str = "linear"
    warmup_steps: int = 0


@dataclass(frozen=True)
class RunConfig:
    """Reproducibility, checkpoints and logging.

    Attributes:
        seed: seeds the weights, the batch order and every random draw.
        checkpoint_every: steps between checkpoints (0: only at the end).
        snapshot_every: steps between in-memory replay states (the triage replays from one).
        replay_steps: at most this many steps before the failure the triage replays from.
        log_every: steps between TensorBoard points.
        tensorboard: write TensorBoard event files under ``<out>/tensorboard``.
        progress: show a tqdm progress bar.
        triage: replay and classify on an anomaly.
        refit_intercepts: after training, shift each head's output bias so that the mean
            predicted probability on the known (masked-in) training rows equals their observed
            rate: the intercept's own stationarity condition, which a finite noisy run only
            approaches (``model.intercepts``).
    """

    seed: int = 0
    checkpoint_every: int = 200
    snapshot_every: int = 16
    replay_steps: int = 16
    log_every: int = 10
    tensorboard: bool = True
    progress: bool = True
    triage: bool = True
    refit_intercepts: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """The whole training configuration (saved as ``config.json`` in the model dir)."""

    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    guard: GuardConfig = GuardConfig()
    run: RunConfig = RunConfig()

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=list))

    def replace(self, **sections: Mapping[str, Any]) -> TrainConfig:
        """A copy with some fields of some sections changed: ``cfg.replace(optim={"lr": 1})``."""
        merged = self.to_dict()
        for name, changes in sections.items():
            merged.setdefault(name, {}).update(changes)
        return config_from_dict(merged)


_SECTIONS = {"model": ModelConfig, "loss": LossConfig, "optim": OptimConfig,
             "guard": GuardConfig, "run": RunConfig}


def _coerce(cls: type, name: str, raw: Mapping[str, Any], where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected section {name!r} to be a mapping, found "
                          f"{type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} in section {name!r}; expected "
                          f"some of {sorted(known)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{where}: {name}.{key} expected true/false, found {value!r}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"{where}: {name}.{key} expected a number, found {value!r}")
            value = type(default)(value) if isinstance(default, float) else value
        elif isinstance(default, Mapping) and not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {name}.{key} expected a mapping, found {value!r}")
        values[key] = value
    return cls(**values)


def _validate(cfg: TrainConfig, where: str) -> None:
    m, o = cfg.model, cfg.optim
    problems = []
    if m.architecture not in ("shared_bottom", "mmoe"):
        problems.append(f"model.architecture expected shared_bottom or mmoe, found {m.architecture!r}")
    if o.precision not in PRECISIONS:
        problems.append(f"optim.precision expected one of {PRECISIONS}, found {o.precision!r}")
    if cfg.loss.weighting not in ("fixed", "uncertainty"):
        problems.append(f"loss.weighting expected fixed or uncertainty, found {cfg.loss.weighting!r}")
    if len(set(m.tasks)) != len(m.tasks) or not all(isinstance(t, str) for t in m.tasks):
        problems.append(f"model.tasks expected distinct stage names, found {list(m.tasks)}")
    if m.tasks:  # with no tasks yet, bind_config checks these against the project's stages
        problems += _task_mapping_problems(cfg, m.tasks)
    if not 0.0 <= m.id_dropout < 1.0 or not 0.0 <= m.dropout < 1.0:
        problems.append(f"model.id_dropout and model.dropout expected in [0, 1), found "
                        f"{m.id_dropout} and {m.dropout}")
    small = {k: v for k, v in m.id_buckets.items() if not isinstance(v, int) or v < 2}
    if m.default_id_buckets < 2:
        small["(default_id_buckets)"] = m.default_id_buckets
    if small:
        problems.append(f"model.id_buckets expected at least 2 per id (bucket 0 is unknown; 2 "
                        f"puts every known id into one row), found {small}")
    if o.lr_schedule not in LR_SCHEDULES:
        problems.append(f"optim.lr_schedule expected one of {LR_SCHEDULES}, found {o.lr_schedule!r}")
    if o.batch_size < 1 or o.epochs < 1:
        problems.append(f"optim.batch_size and optim.epochs must be >= 1, found "
                        f"{o.batch_size} and {o.epochs}")
    g = cfg.guard
    if g.on_anomaly not in ON_ANOMALY:
        problems.append(f"guard.on_anomaly expected one of {ON_ANOMALY}, found {g.on_anomaly!r}")
    if g.max_skipped_batches < 0 or g.max_rollbacks < 0 or o.warmup_steps < 0:
        problems.append(f"guard.max_skipped_batches, guard.max_rollbacks and optim.warmup_steps "
                        f"expected >= 0, found {g.max_skipped_batches}, {g.max_rollbacks} and "
                        f"{o.warmup_steps}")
    if not all(isinstance(x, (int, float)) and 0 < x < 1 for x in g.rollback_lr_scales):
        problems.append(f"guard.rollback_lr_scales expected numbers in (0, 1), found "
                        f"{list(g.rollback_lr_scales)}")
    if cfg.run.snapshot_every < 1 or cfg.guard.probe_every < 1:
        problems.append("run.snapshot_every and guard.probe_every must be >= 1")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))


def _task_mapping_problems(cfg: TrainConfig, tasks: tuple[str, ...]) -> list[str]:
    problems = []
    for section, mapping in (("loss.task_weights", cfg.loss.task_weights),
                             ("loss.pos_weight", cfg.loss.pos_weight),
                             ("optim.head_lr_scale", cfg.optim.head_lr_scale)):
        bad = [k for k in mapping if k not in tasks]
        if bad:
            problems.append(f"{section} names unknown task(s) {bad}; tasks are {list(tasks)}")
    return problems


def bind_config(cfg: TrainConfig, stages: tuple[str, ...] | list[str],
                features: tuple[FeatureSpec, ...] | list[FeatureSpec] | None = None, *,
                where: str = "config") -> TrainConfig:
    """``cfg`` checked against a project: its heads set to the chosen stages in funnel order.

    Args:
        cfg: a config as loaded (``model.tasks`` empty means every stage).
        stages: the project's funnel stages, in funnel order (``Project.tasks``).
        features: the project's model features (``Project.feature_specs("offline")``); when
            given, ``model.id_buckets`` may only name its id features.
        where: the config's origin, for error messages.

    Raises:
        ConfigError: ``model.tasks`` names a stage the project does not have, a loss or
            learning-rate mapping names a task that is not trained, or ``model.id_buckets``
            names a column that is not an id feature.
    """
    stages = tuple(stages)
    chosen = cfg.model.tasks or stages
    problems = []
    unknown = [t for t in chosen if t not in stages]
    if unknown or not stages:
        problems.append(f"model.tasks expected stages of the project's funnel {list(stages)}, "
                        f"found {list(chosen)} ({unknown} not a stage of the labels contract)")
    tasks = tuple(t for t in stages if t in chosen)
    if tasks and not unknown:
        problems += _task_mapping_problems(cfg, tasks)
    if features is not None:
        ids = [f.name for f in features if f.kind == "id"]
        bad = [k for k in cfg.model.id_buckets if k not in ids]
        if bad:
            problems.append(f"model.id_buckets names {bad}, which are not id features of the "
                            f"project; its id features are {ids}")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return cfg if tasks == cfg.model.tasks else cfg.replace(model={"tasks": list(tasks)})


def config_from_dict(raw: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """A validated :class:`TrainConfig` from nested mappings (missing sections: defaults)."""
    if not isinstance(raw, Mapping):
        from contracts.yaml_lines import describe_yaml

        raise ConfigError(f"{where}: expected a mapping of sections {sorted(_SECTIONS)}, "
                          f"found {describe_yaml(raw)}")
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {unknown}; expected some of "
                          f"{sorted(_SECTIONS)}")
    sections = {name: _coerce(cls, name, raw.get(name, {}), where) for name, cls in _SECTIONS.items()}
    cfg = TrainConfig(**sections)
    _validate(cfg, where)
    return cfg


def load_config(path: str | Path | None, *, flag: str = "--config") -> TrainConfig:
    """Read a YAML or JSON config file (None: the defaults).

    ``flag`` names where the path came from, for the error when there is no file.

    Raises:
        ConfigError: the file is missing, unparsable, or has unknown or ill-typed keys.
    """
    if path is None:
        return TrainConfig()
    from contracts.yaml_lines import YamlInputError, duplicate_keys_message, read_config_file

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{flag}: expected a YAML or JSON file, found nothing at {p}")
    try:  # bounded: size, nesting, nodes, aliases (docs/contracts.md "Limits")
        raw, duplicates = read_config_file(p, kind="training config")
    except YamlInputError as exc:
        raise ConfigError(f"cannot read the training config: {exc}") from None
    if duplicates:
        raise ConfigError(duplicate_keys_message(p, duplicates))
    return config_from_dict(raw if raw is not None else {}, where=str(p))
