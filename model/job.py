"""The training job behind ``funnelguard train``: training set, guarded fit, model or bundle.

:func:`run_training` takes a training set (``model.trainset.build_training_set``), fits the
encoder on the train split with the project's features, trains the heads the config binds to
the project's stages with the guard, and either publishes the model directory or, when the
guard stops the run, writes the forensic bundle (personal columns redacted) and the triage.
The key and partition columns come from the training set, the features, ranges and defaults
from the features contract; nothing here names a column. It returns a RunResult (command ``train``,
partition = the as-of date) with a ``training_guard`` finding (value: the anomaly kind, or
``clean``) and, on a stop, a ``triage`` finding (value: the verdict) whose message is the
three-line summary. It also records ``fg_training_runs`` (and ``fg_models`` on success).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from funnelguard.findings import Finding, Metric, RunResult
from model.artifacts import build_net, save_model
from model.audit import kept_audit_findings
from model.batch_audit import BatchAudit
from model.batches import tensors_for
from model.bundle import (
    FeatureRange,
    Redactor,
    feature_ranges,
    label_frame,
    scan_inputs,
    update_bundle,
    write_bundle,
)
from model.config import TrainConfig, bind_config
from model.encoding import FeatureEncoder
from model.errors import FeatureFrameError, TrainingAnomaly
from model.intercepts import refit_intercepts
from model.policy import action_findings
from model.state import resume_point
from model.training import StepStats, Trainer
from model.triage import TriageResult, triage

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from funnelguard.project import Project
    from funnelguard.warehouse import FeatureSpec

__all__ = ["run_training", "fingerprint_of", "summary_lines", "Catalogue", "catalogue_of"]


@dataclass(frozen=True)
class Catalogue:
    """What the job needs to know about the data, from the project (or the training set).

    Attributes:
        features: the model's feature specs (kind, default, range, categories).
        ranges: the features' legitimate values, for the bundle's input scan.
        source: where the ranges came from (shown in the bundle).
        pii: personal columns, redacted in the bundle.
        key: the key column of the training rows.
        keep: columns the bundle's batch shows beside the features (key, partition).
    """

    features: tuple[FeatureSpec, ...]
    ranges: tuple[FeatureRange, ...]
    source: str
    pii: frozenset[str]
    key: str
    keep: tuple[str, ...]


def catalogue_of(training_set: Any, project: Project | None = None) -> Catalogue:
    """The features, ranges, personal columns and key of a training set.

    With a project, everything comes from its contracts (the key and partition column names
    from the training set when it carries them). Without one (synthetic sets in tests), from
    the set's own ``features``, ``pii``, ``key`` and ``partition``.

    Raises:
        FeatureFrameError: neither the project nor the set names the features or the key.
    """
    key = getattr(training_set, "key", None)
    partition = getattr(training_set, "partition", None)
    if project is not None:
        features = tuple(project.feature_specs("offline"))
        ranges, source = feature_ranges(project.features)
        pii = {f.name for c in project.contracts.values() for f in c.fields if f.pii}
        key = key or project.key_column
        partition = partition or project.features.partition_column
    else:  # a synthetic set carries specs; a built TrainingSet only names its columns
        features = tuple(f for f in getattr(training_set, "features", None) or ()
                         if hasattr(f, "kind"))
        pii = set(getattr(training_set, "pii", None) or ())
        ranges, source = feature_ranges(features, pii)
    if not features or not key:
        raise FeatureFrameError(
            "training: expected the model's features and the key column (from the project's "
            f"contracts, or the training set's `features` and `key`), found features "
            f"{[f.name for f in features]} and key {key!r}")
    pii |= {r.name for r in ranges if r.pii}
    return Catalogue(features, tuple(ranges), source, frozenset(pii), key,
                     tuple(c for c in (key, partition) if c))


def fingerprint_of(config: TrainConfig, frame: pd.DataFrame, as_of: str,
                   key: str) -> str:
    """Config + as-of + the training rows' keys: a checkpoint resumes only the same run."""
    h = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    h.update(as_of.encode())
    ids = pd.util.hash_array(frame[key].astype(str).to_numpy(object))
    h.update(np.ascontiguousarray(ids).tobytes())
    return h.hexdigest()[:16]


def summary_lines(anomaly, verdict: TriageResult | None, bundle: Path) -> tuple[str, str, str]:
    """Three lines a person reads in Slack: what stopped, why, where the evidence is."""
    tasks = ", ".join(anomaly.tasks) or "all tasks"
    where = f"; first non-finite module {anomaly.module}" if anomaly.module else ""
    first = f"Training stopped at step {anomaly.step}: {anomaly.kind} ({tasks}){where}."
    if verdict is None:
        return first, "Verdict: not triaged (run.triage off, or the replay failed).", \
            f"Bundle: {bundle}"
    second = f"Verdict: {verdict.verdict} — {verdict.reason}."
    fp32 = next((r for r in verdict.replays if r.precision == "fp32" and r.detect_anomaly), None)
    if fp32 is not None:
        losses = ", ".join(f"{t}={v:.4g}" for t, v in fp32.final_losses().items())
        ops = ", ".join(fp32.anomaly_ops) or "none"
        third = (f"Replayed steps {fp32.from_step}-{fp32.to_step} in fp32 under anomaly mode: "
                 f"{losses}; anomaly-mode ops: {ops}. Bundle: {bundle}")
    else:
        third = f"No replay state. Bundle: {bundle}"
    return first, second, third


def _record(store_url: str | None, *, as_of: str, status: str, out: Path, config: TrainConfig,
            steps: int, anomaly: str | None = None, verdict: str | None = None,
            bundle: str | None = None, summary: dict[str, Any] | None = None,
            version: str | None = None, metrics: dict[str, Any] | None = None) -> None:
    if store_url is None:
        return
    from sqlalchemy import select

    from monitors.store import open_store
    from monitors.store.models import ModelRow, TrainingRun

    store = open_store(store_url)
    with store.session() as s, s.begin():
        run = TrainingRun(as_of=as_of, status=status, out_dir=str(out), anomaly=anomaly,
                          verdict=verdict, bundle_path=bundle, steps=steps,
                          config=config.to_dict(), summary=summary or {},
                          finished_at=dt.datetime.now(dt.UTC))
        s.add(run)
        s.flush()
        if version is not None:
            row = s.scalars(select(ModelRow).where(ModelRow.version == version)).first()
            if row is None:
                row = ModelRow(version=version, path=str(out), as_of=as_of)
                s.add(row)
            row.path, row.training_run_id, row.metrics = str(out), run.id, metrics or {}


def _holdout_losses(trainer: Trainer, frame: pd.DataFrame, encoder: FeatureEncoder,
                    keep: tuple[str, ...]) -> dict[str, float]:
    from model.losses import task_losses

    if frame.empty:
        return {}
    data = tensors_for(frame, encoder, trainer.tasks, keep=keep)
    trainer.net.eval()
    with torch.no_grad():
        logits = trainer.net(data.features)
        losses = task_losses(logits, data.labels, data.masks, trainer.tasks, trainer.config.loss)
    return {t: float(v) for t, v in losses.items()}


def run_training(training_set: Any, out: str | Path, config: TrainConfig, *,
                 project: Project | None = None, store_url: str | None = None,
                 on_step: Callable[[StepStats], None] | None = None,
                 engine: Engine | None = None, audit: bool = False) -> RunResult:
    """Audit the training set, then train on it (:func:`_train`); refuse when the audit fails.

    The audit (:mod:`model.audit`: contract checks per day, history bounds, leakage) runs over
    the whole window before anything is written: when it fails, the result is a failed
    ``training_audit`` finding and the findings naming feature and day (or stage); no model is
    trained or published and ``out`` is left as it was. Its warnings and summary are appended
    to the training run's findings otherwise. Without a project (synthetic sets) there are no
    contracts to audit against.

    Args:
        engine: the warehouse, for the leakage audit's online values (None: trailing norm only).
        audit: run the audit first. The ``train`` job (:func:`model.commands.run_train`, the
            CLI and the DAG task) turns it on unless ``--no-audit``; a direct call trains the
            set it is given (tests build faulty sets on purpose to exercise the guard).
        training_set, out, config, project, store_url, on_step: as :func:`_train`.
    """
    audited = None
    if audit and project is not None:
        from model.audit import audit_training_set

        audited = audit_training_set(project, training_set, engine=engine)
        if audited.status == "fail":
            return _refused(audited, training_set, out, config, store_url)
    result = _train(training_set, out, config, project=project, store_url=store_url,
                    on_step=on_step)
    return result if audited is None else dataclasses.replace(
        result, findings=(*result.findings, *kept_audit_findings(audited)))


def _refused(audited: RunResult, training_set: Any, out: str | Path, config: TrainConfig,
             store_url: str | None) -> RunResult:
    """The train result of a refused audit: its findings, and a run recorded as failed."""
    from model.audit import refusal_findings

    as_of = str(training_set.as_of)
    findings = refusal_findings(audited)
    _record(store_url, as_of=as_of, status="fail", out=Path(out), config=config, steps=0,
            anomaly="training_audit", summary={"lines": [findings[0].message]})
    return RunResult(command="train", partition=as_of, dataset="training", findings=findings)


def _train(training_set: Any, out: str | Path, config: TrainConfig, *,
           project: Project | None = None, store_url: str | None = None,
           on_step: Callable[[StepStats], None] | None = None) -> RunResult:
    """Train on a TrainingSet, writing the model directory or a forensic bundle under ``out``.

    Args:
        training_set: a ``model.trainset.TrainingSet`` (or anything with ``frame``, ``as_of``,
            ``tasks``, ``description`` and ``downsample_rate``; without a project also
            ``features`` and ``key``, as ``model.synthetic`` sets have).
        out: the model directory; also holds checkpoints, TensorBoard events and forensics.
        config: the training config; its ``model.tasks`` are bound to the set's stages.
        project: the project whose contracts name the features, ranges and personal columns.
        store_url: results store for ``fg_training_runs`` / ``fg_models`` (None: not recorded).
        on_step: called after every step (progress reporting).

    Raises:
        ConfigError: the config names a stage, task or id column the data does not have.
    """
    out = Path(out)
    catalogue = catalogue_of(training_set, project)
    config = bind_config(config, tuple(training_set.tasks), catalogue.features)
    out.mkdir(parents=True, exist_ok=True)
    as_of = str(training_set.as_of)
    tasks = tuple(config.model.tasks)
    frame = training_set.frame
    train = frame.loc[frame["split"] == "train"].reset_index(drop=True)
    holdout = frame.loc[frame["split"] == "holdout"].reset_index(drop=True)
    torch.manual_seed(config.run.seed)
    encoder = FeatureEncoder.fit(train, config.model.id_buckets, catalogue.features,
                                 default_buckets=config.model.default_id_buckets)
    data = tensors_for(train, encoder, tasks, keep=catalogue.keep)
    base_rates = data.base_rates()
    net = build_net(config, encoder, base_rates)
    trainer = Trainer(net, data, config, out_dir=out, on_step=on_step,
                      audit=BatchAudit.of(encoder, train, tasks))
    fingerprint = fingerprint_of(config, train, as_of, catalogue.key)
    trainer.fingerprint = {"fingerprint": fingerprint, "as_of": as_of}
    resume = resume_point(out, fingerprint)  # a damaged latest checkpoint: the one before
    if resume.state is not None:
        trainer.restore(resume.state)
        trainer.resumed_from = resume.state.step
    common = {"command": "train", "partition": as_of, "dataset": "training"}
    try:
        result = trainer.run()
    except TrainingAnomaly as exc:
        return _stopped(trainer, exc, out, config, as_of, store_url, common, catalogue,
                        resume_note=resume.note)
    shifts = refit_intercepts(net, data) if config.run.refit_intercepts else {}
    holdout_losses = _holdout_losses(trainer, holdout, encoder, catalogue.keep)
    version = f"funnel-{as_of}-{fingerprint[:8]}"
    save_model(out, net, encoder, config, base_rates=base_rates,
               description=dict(training_set.description), as_of=as_of, version=version,
               downsample_rate=training_set.downsample_rate,
               extra={"steps": result.steps, "holdout_loss": holdout_losses,
                      "intercept_shift": shifts,
                      "project": project.name if project is not None else None,
                      "train_loss": result.final_losses, "resumed_from": result.resumed_from})
    _record(store_url, as_of=as_of, status="pass", out=out, config=config, steps=result.steps,
            summary={"train_loss": result.final_losses, "holdout_loss": holdout_losses},
            version=version, metrics={"holdout_loss": holdout_losses})
    finding = Finding("training_guard", True, "error", value="clean", count=result.steps,
                      message=f"trained {result.steps} steps on {len(train)} rows with the guard "
                              + (f"on; {len(result.actions)} anomal(y/ies) acted on by "
                                 f"guard.on_anomaly (training_action findings)"
                                 if result.actions else "on; no anomaly")
                              + (f" (resumed from step {result.resumed_from})"
                                 if result.resumed_from is not None else "")
                              + (f"; {resume.note}" if resume.note else ""))
    metrics = [Metric("train_loss", v, task=t) for t, v in result.final_losses.items()]
    metrics += [Metric("holdout_loss", v, task=t) for t, v in holdout_losses.items()]
    return RunResult(**common, findings=(finding, *action_findings(result.actions)),
                     metrics=tuple(metrics),
                     artifacts={"model_dir": str(out)})


def _stopped(trainer: Trainer, exc: TrainingAnomaly, out: Path, config: TrainConfig, as_of: str,
             store_url: str | None, common: dict[str, Any], catalogue: Catalogue, *,
             resume_note: str = "") -> RunResult:
    anomaly = exc.anomaly
    rows = trainer.plan.rows_for(anomaly.step)
    raw = trainer.data.raw.iloc[rows.numpy()]
    ranges = catalogue.ranges
    redactor = Redactor(catalogue.pii, {r.name: r for r in ranges})
    # The triage reads the raw values; only what is written or reported is redacted.
    scan = scan_inputs(raw, ranges)
    shown_scan = scan_inputs(raw, ranges, key=catalogue.key, redactor=redactor)
    state = trainer.snapshots.before(anomaly.step, config.run.replay_steps)
    folder = out / "forensics" / f"step-{anomaly.step:07d}"
    history = {"loss": {t: list(h) for t, h in trainer.loss_history.items()},
               "grad_norm": list(trainer.grad_history), "probes": list(trainer.probe_history)}
    seeds = {"seed": config.run.seed, "batch_order": "torch.randperm seeded seed*1000003+epoch",
             "steps_per_epoch": trainer.plan.steps_per_epoch, "epoch": trainer.plan.epoch_of(anomaly.step),
             "torch_rng_state": "replay_state.pt (rng)"}
    bundle = write_bundle(folder, anomaly=anomaly, exception=type(exc).__name__, raw_batch=raw,
                          state=state, history=history, config=config.to_dict(), seeds=seeds,
                          scan=shown_scan, scan_source=catalogue.source,
                          context={"as_of": as_of, "precision": trainer.precision},
                          key=catalogue.key, redactor=redactor,
                          labels=label_frame(trainer.data.labels[rows], trainer.data.masks[rows],
                                             trainer.tasks), actions=trainer.actions)
    verdict, triage_error = None, None
    if config.run.triage:
        try:
            verdict = triage(trainer, anomaly, state, scan)
        except Exception as err:  # noqa: BLE001 - a failed triage must not hide the stop itself
            triage_error = f"{type(err).__name__}: {err}"
    lines = summary_lines(anomaly, verdict, bundle)
    update_bundle(bundle, triage=verdict.to_json() if verdict else None, summary=list(lines),
                  triage_error=triage_error)
    task = anomaly.tasks[0] if len(anomaly.tasks) == 1 else None
    findings = [Finding("training_guard", False, "error", task=task, value=anomaly.kind,
                        threshold=anomaly.threshold, count=anomaly.step,
                        message=f"{type(exc).__name__}: {anomaly.message}"
                                + (f"; {resume_note}" if resume_note else ""),
                        examples=tuple(redactor.values(catalogue.key, raw[catalogue.key])
                                       .astype(str).head(3)))]
    if verdict is not None:
        findings.append(Finding(
            "triage", False, "error", feature=verdict.features[0] if verdict.features else None,
            task=verdict.tasks[0] if len(verdict.tasks) == 1 else None, value=verdict.verdict,
            count=anomaly.step, message="\n".join(lines),
            examples=verdict.features or verdict.tasks or None))
    findings += action_findings(trainer.actions)
    _record(store_url, as_of=as_of, status="fail", out=out, config=config, steps=anomaly.step,
            anomaly=anomaly.kind, verdict=verdict.verdict if verdict else None,
            bundle=str(bundle), summary={"lines": list(lines)})
    return RunResult(**common, findings=tuple(findings),
                     artifacts={"bundle": str(bundle), "out_dir": str(out)})
