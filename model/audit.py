"""The training-set audit: the whole window checked before the first training step.

``train`` would otherwise learn from whatever the window holds: a finite extreme with no
contract maximum (an income of ``1e30`` on a few rows of one day) passes ``validate``, and
same-day drift compares the poisoned side with itself. :func:`audit_training_set` runs over the
in-memory training set, day by day (the features contract's partition column):

- **contract checks** of each day (:func:`contracts.runner.validate_frame` on the day's
  contract columns): a failing (feature, check) is a finding naming the day
  (``segment = <partition>=<day>``), with the contract's severity. Non-finite and missing
  values (``finite``, ``not_null``) are reported as warnings: the training set passes them
  through on purpose and the training guard stops on the first batch holding them, with a
  forensic bundle and a triage verdict (docs/model.md);
- **history bounds** of each numeric feature: each day's quantiles against the band the
  other days of the window draw (:mod:`monitors.history_bounds`, the rule ``validate`` uses);
- **leakage** of each feature and stage (:mod:`model.leakage`): single-feature predictive
  power on matured rows against the earlier days and against the online values of the same
  impressions (read from the warehouse when an engine is given).

It returns a RunResult (command ``audit``) whose ``training_audit`` finding fails when any
error-severity check failed; ``train`` (:func:`model.job.run_training`) then refuses: no model
is trained or published and nothing already in the model directory is touched.
:func:`run_audit` is the ``funnelguard audit`` job (``funnelguard.commands.JOBS``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from funnelguard.findings import Finding, Metric, RunResult
from model.leakage import LeakagePolicy, leakage_findings
from monitors.history_bounds import (
    BoundPolicy,
    band_from_history,
    bound_finding,
    count_outside,
    frame_quantiles,
    usable_values,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract
    from funnelguard.project import Project
    from model.config import TrainConfig

__all__ = ["CHECK", "COMMAND", "GUARD_CHECKS", "AuditPolicy", "audit_training_set",
           "run_audit", "refusal_findings", "kept_audit_findings", "contract_findings", "history_findings"]

CHECK = "training_audit"
COMMAND = "audit"
# Checks whose failures the training guard stops on (with a bundle): reported, never refused.
GUARD_CHECKS: tuple[str, ...] = ("finite", "not_null")


@dataclass(frozen=True)
class AuditPolicy:
    """What the audit checks and how strictly.

    Attributes:
        contract, history, leakage: run that part.
        bounds: the band rule (the other days of the window are the history).
        leakage_policy: when predictive power is a leak.
        guard_checks: contract checks reported as warnings (the guard owns them).
    """

    contract: bool = True
    history: bool = True
    leakage: bool = True
    bounds: BoundPolicy = field(default_factory=lambda: BoundPolicy(min_history_days=5))
    leakage_policy: LeakagePolicy = field(default_factory=LeakagePolicy)
    guard_checks: tuple[str, ...] = GUARD_CHECKS


def _day_segment(partition: str, day: Any) -> str:
    return f"{partition}={day}"


def _frame_contract(contract: Contract, columns: set[str]) -> Contract:
    """The contract narrowed to the columns the training frame carries (offline)."""
    return dataclasses.replace(contract, fields=tuple(f for f in contract.fields
                                                      if f.name in columns))


def contract_findings(contract: Contract, frame: pd.DataFrame, partition: str,
                      policy: AuditPolicy = AuditPolicy()) -> list[Finding]:
    """Per day, the contract's checks on the frame's contract columns.

    The whole window is checked once; only the fields that failed there (or whose default
    rate some day exceeds) are checked again day by day, so a clean window costs one pass.

    Returns one finding per failing (feature, check, day) and one passing finding per
    (feature, check) that held on every day.
    """
    from contracts.runner import validate_frame

    narrowed = _frame_contract(contract, set(frame.columns))
    columns = [f.name for f in narrowed.fields_for("offline")]
    whole = validate_frame(narrowed, "offline", frame[columns].reset_index(drop=True))
    suspects = {f.feature for f in whole.findings if not f.passed} | _default_rate_suspects(
        narrowed, frame, partition)
    failed: list[Finding] = []
    if suspects:
        keep = {f.name for f in narrowed.fields if f.name in suspects or f.primary_key
                or f.partitioned}
        per_day = _frame_contract(narrowed, keep)
        day_columns = [c for c in columns if c in keep]
        for day, rows in frame.groupby(partition, sort=True):
            result = validate_frame(per_day, "offline", rows[day_columns].reset_index(drop=True),
                                    partition=str(day))
            failed += [_day_finding(f, partition, day, policy) for f in result.findings
                       if not f.passed and f.feature in suspects]
    failing = {(f.feature, f.check) for f in failed}
    days = frame[partition].nunique()
    summary = [f.with_(message=f"{f.feature or 'table'}: {f.check} held on all {days} days of "
                               "the training window", count=0, value=0.0, examples=None)
               for f in whole.findings if f.passed and (f.feature, f.check) not in failing]
    return failed + summary


def _day_finding(f: Finding, partition: str, day: Any, policy: AuditPolicy) -> Finding:
    guard = f.check in policy.guard_checks and f.severity == "error"
    return f.with_(segment=_day_segment(partition, day),
                   severity="warning" if guard else f.severity,
                   message=f"{day}: {f.message}" + (
                       " (reported only: the training guard stops on the first batch holding "
                       "them)" if guard else ""))


def _default_rate_suspects(contract: Contract, frame: pd.DataFrame, partition: str) -> set[str]:
    """Fields whose default rate exceeds the contract's limit on some day of the window."""
    from contracts.checks import default_mask

    out = set()
    for f in contract.fields_for("offline"):
        limit = f.max_default_rate.get("offline")
        if limit is None or f.default is None:
            continue
        mask = default_mask(frame[f.name], f.default, numeric=f.is_numeric)
        if (mask.groupby(frame[partition].to_numpy()).mean() > limit).any():
            out.add(f.name)
    return out


def history_findings(project: Project, frame: pd.DataFrame, partition: str,
                     policy: AuditPolicy = AuditPolicy()) -> list[Finding]:
    """Each day of each numeric feature against the band the window's other days draw."""
    from funnelguard.redaction import personal_fields

    personal = personal_fields(project.contracts.values())
    contract = project.features
    days = sorted(frame[partition].unique())
    day_rows = frame.groupby(partition, sort=True).indices
    out: list[Finding] = []
    for f in contract.feature_fields("offline"):
        if not f.is_numeric or f.role != "feature" or f.name not in frame.columns:
            continue
        default = (float(f.default) if isinstance(f.default, (int, float))
                   and not isinstance(f.default, bool) else None)
        column = frame[f.name].to_numpy()
        usable = {d: usable_values(column[day_rows[d]], default) for d in days}
        summaries = {d: frame_quantiles(v, d) for d, v in usable.items()}
        failed, checked = [], 0
        for d in days:
            history = [s for other, s in summaries.items() if other != d and s is not None]
            band = band_from_history(history, policy.bounds)
            if band is None:
                continue
            checked += 1
            outside, extremes = count_outside(usable[d], band)
            finding = bound_finding(f, band, d, len(usable[d]), outside, extremes,
                                    environment="offline", dataset=contract.name,
                                    policy=policy.bounds, personal=personal.get(f.name))
            if not finding.passed:
                failed.append(finding.with_(segment=_day_segment(partition, d)))
        out += failed
        if not failed:
            out.append(Finding(
                "history_bound", True, "error", feature=f.name, environment="offline",
                count=0, value=0.0, dataset=contract.name,
                message=(f"{f.name}: every one of {checked} days lies within the band the "
                         "window's other days draw" if checked else
                         f"{f.name}: too few days with {policy.bounds.min_rows}+ usable values "
                         "to draw a band")))
    return out


def _online_values(project: Project, engine: Engine, frame: pd.DataFrame, key: str,
                   partition: str, names: list[str]) -> tuple[pd.DataFrame | None, str]:
    """The serving side's values of ``names`` for the window's days, keyed like the frame."""
    from funnelguard.errors import InputError
    from funnelguard.project import FEATURES

    contract = project.features
    if "online" not in contract.tables:
        return None, "the features contract has no online table"
    online_key = contract.key_column
    present = {f.name for f in contract.fields_for("online")}
    columns = [online_key, *[n for n in names if n in present]]
    start, end = min(frame[partition]), max(frame[partition])
    try:
        online = project.read(engine, FEATURES, "online", start, end, columns=columns)
    except InputError as exc:
        return None, f"online values not read: {exc}"
    return online.rename(columns={online_key: key}), ""


def audit_training_set(project: Project, training_set: Any, *, engine: Engine | None = None,
                       policy: AuditPolicy = AuditPolicy()) -> RunResult:
    """Audit a training set (``model.trainset.TrainingSet``) before the first training step.

    Args:
        project: the project whose features contract names the checks, features, defaults
            and personal fields.
        training_set: the set ``train`` would learn from (``frame``, ``as_of``, ``tasks``,
            ``key``, ``partition``).
        engine: the warehouse, for the online values of the leakage audit (None: the
            trailing norm only).
        policy: what to check.

    Returns:
        A RunResult (command ``audit``, partition the as-of date, dataset ``training``): the
        failing findings (each naming feature and day, or feature and stage), passing
        summaries, and one ``training_audit`` finding that fails when an error did.
    """
    frame = training_set.frame
    key, partition = training_set.key, training_set.partition
    findings: list[Finding] = []
    notes: list[str] = []
    if policy.contract:
        findings += contract_findings(project.features, frame, partition, policy)
    if policy.history:
        findings += history_findings(project, frame, partition, policy)
    if policy.leakage:
        specs = [s for s in project.feature_specs("offline")
                 if s.kind != "id" and s.name in frame.columns]
        online = None
        if engine is not None:
            online, note = _online_values(project, engine, frame, key, partition,
                                          [s.name for s in specs])
            notes += [note] if note else []
        findings += leakage_findings(frame, features=[(s.name, s.kind == "category")
                                                      for s in specs],
                                     tasks=tuple(training_set.tasks), partition=partition,
                                     key=key, online=online, policy=policy.leakage_policy,
                                     dataset=project.features.name)
    errors = [f for f in findings if f.failed_error]
    warnings = [f for f in findings if not f.passed and not f.failed_error]
    days = frame[partition].nunique()
    named = sorted({f"{f.check} {f.feature or ''}{' ' + f.task if f.task else ''}"
                    f"{' ' + f.segment if f.segment else ''}".strip() for f in errors})
    message = (f"training set as of {training_set.as_of}: {len(frame)} rows over {days} days; "
               f"{len(errors)} failed check(s), {len(warnings)} warning(s)"
               + (": " + "; ".join(named[:10]) + (" ..." if len(named) > 10 else "")
                  if named else "") + (f" ({'; '.join(notes)})" if notes else ""))
    summary = Finding(CHECK, not errors, "error", value=len(errors), threshold=0,
                      count=len(frame), message=message, dataset="training",
                      examples=tuple(named[:5]) or None)
    # kept over time: the next windows' trailing norm can be read from the store
    metrics = [Metric(f"leakage_{f.threshold['statistic']}", float(f.value), feature=f.feature,
                      task=f.task, environment="offline")
               for f in findings if f.check == "leakage" and f.threshold]
    return RunResult(command=COMMAND, partition=str(training_set.as_of),
                     findings=(summary, *findings), dataset="training",
                     environment="offline", metrics=tuple(metrics))


def run_audit(project: Project, engine: Engine, as_of: dt.date | str, *,
              config: str | Path | TrainConfig | None = None, online: bool = True) -> RunResult:
    """Build the training set as of ``as_of`` (as ``train`` would) and audit it.

    Args:
        project: the project.
        engine: the warehouse.
        as_of: knowledge at this date's 00:00 UTC.
        config: the training config (its stages and seed pick the set); None: the project's,
            else the built-in.
        online: compare predictive power with the online values (the leakage audit's (b)).

    Raises:
        ConfigError: a bad config (exit 2).
        InputError: a missing table or column, no matured day for the holdout (exit 2).
    """
    from funnelguard.warehouse import parse_date
    from model.commands import config_for
    from model.trainset import build_training_set

    day = parse_date(as_of, flag="--as-of")
    cfg = config_for(project, config)
    training_set = build_training_set(project, engine, day, seed=cfg.run.seed,
                                      tasks=cfg.model.tasks)
    return audit_training_set(project, training_set, engine=engine if online else None)


def refusal_findings(audit: RunResult) -> tuple[Finding, ...]:
    """The findings ``train`` reports when the audit refuses: why, then what failed."""
    summary = next(f for f in audit.findings if f.check == CHECK)
    refusal = summary.with_(message=f"training refused, no model trained or published: "
                                    f"{summary.message} (`train --no-audit` skips the audit)")
    return (refusal, *(f for f in audit.findings if f.check != CHECK and not f.passed))


def kept_audit_findings(audit: RunResult) -> tuple[Finding, ...]:
    """What a training run keeps of a passed audit: its summary and its warnings."""
    return tuple(f for f in audit.findings if f.check == CHECK or not f.passed)
