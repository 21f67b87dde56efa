"""Multivariate drift: a change in how features go together, which every single-column test
misses, is flagged; clean days are not — on synthetic data, the packaged simulator and the
second project."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from monitors.drift import DriftTarget, detect_drift, drift_targets
from monitors.multivariate import domain_classifier_drift, multivariate_finding

TARGETS = (DriftTarget("income", "num"), DriftTarget("limit", "num"), DriftTarget("age", "num"))


def _frame(n: int, seed: int, *, decoupled: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(11, 0.5, n)
    limit = income * 0.2 * rng.lognormal(0, 0.2, n)  # tied to income
    if decoupled:
        limit = rng.permutation(limit)  # the same values, no longer tied
    return pd.DataFrame({"income": income, "limit": limit, "age": rng.integers(18, 90, n)})


def test_decoupled_features_are_flagged_where_every_marginal_passes():
    reference, current = _frame(8000, 1), _frame(3000, 2, decoupled=True)
    assert not any(r.drifted for r in detect_drift(reference, current, TARGETS, "offline"))
    result = domain_classifier_drift(reference, current, TARGETS, "offline")
    assert result.drifted and result.low > 0.55 and result.auc > 0.7
    assert {name for name, _ in result.importance[:2]} == {"income", "limit"}
    finding = multivariate_finding(result, dataset="d")
    assert (finding.check, finding.passed, finding.severity) == ("drift_multivariate", False, "warning")
    assert "income" in finding.message and "limit" in finding.message


def test_clean_is_not_flagged():
    result = domain_classifier_drift(_frame(8000, 3), _frame(3000, 4), TARGETS, "offline")
    assert not result.drifted and result.auc < 0.55
    assert multivariate_finding(result).passed


def test_too_few_numeric_features_is_an_error():
    with pytest.raises(ValueError, match="two numeric"):
        domain_classifier_drift(_frame(100, 0), _frame(100, 1), TARGETS[:1], "offline")


def test_simulated_odds_decoupled_from_credit(warehouse):
    """approval_odds shuffled within the day: its marginal is the same, its tie to
    credit_score (the pre-qualification model's main input) is gone."""
    from funnelguard.project import FEATURES, load_project
    from funnelguard.warehouse import connect

    project = load_project()
    engine = connect(warehouse(days=10, per_day=2000, seed=7))
    day = dt.date(2026, 10, 10)
    targets = drift_targets(project.features, ("offline",))
    columns = [t.feature for t in targets]
    window = project.read(engine, FEATURES, "offline", day - dt.timedelta(days=7),
                          day - dt.timedelta(days=1), columns)
    current = project.read(engine, FEATURES, "offline", day, day, columns)
    engine.dispose()
    clean = domain_classifier_drift(window, current, targets, "offline")
    shuffled = current.assign(approval_odds=np.random.default_rng(0).permutation(
        current["approval_odds"].to_numpy()))
    single = {r.feature: r for r in detect_drift(window, shuffled, targets, "offline")}
    assert not single["approval_odds"].drifted and not single["credit_score"].drifted
    faulty = domain_classifier_drift(window, shuffled, targets, "offline")
    assert faulty.drifted and faulty.auc > clean.auc + 0.1
    assert faulty.importance[0][0] == "approval_odds"
    assert "credit_score" in {name for name, _ in faulty.importance[:2]}


def test_run_drift_multivariate_on_a_clean_day(warehouse, tmp_path):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from monitors.commands import run_drift

    engine = connect(warehouse(days=10, per_day=2000, seed=7))
    result = run_drift(load_project(), engine, "2026-10-10", html_dir=tmp_path, multivariate=True)
    engine.dispose()
    found = {f.environment: f for f in result.findings if f.check == "drift_multivariate"}
    assert set(found) == {"offline", "online"} and all(f.passed for f in found.values())
    assert all("last day against its other days" in f.message for f in found.values())
    assert {m.environment for m in result.metrics if m.name == "drift_auc"} == {"offline", "online"}


def test_marketplace_amount_and_apr_coupled(marketplace):
    """The second project: loan_amount and quoted_apr (independent there) sorted together on
    the last day — each marginal unchanged."""
    from funnelguard.project import FEATURES, load_project
    from funnelguard.warehouse import connect

    project = load_project(marketplace.project_path)
    engine = connect(marketplace.warehouse_url)
    targets = drift_targets(project.features, ("online",))
    columns = [t.feature for t in targets]
    day = marketplace.last
    window = project.read(engine, FEATURES, "online", day - dt.timedelta(days=7),
                          day - dt.timedelta(days=1), columns)
    current = project.read(engine, FEATURES, "online", day, day, columns)
    engine.dispose()
    assert not domain_classifier_drift(window, current, targets, "online").drifted
    order = np.argsort(current["loan_amount"].to_numpy())
    coupled = current.copy()
    coupled.loc[coupled.index[order], "quoted_apr"] = np.sort(current["quoted_apr"].to_numpy())
    single = {r.feature: r for r in detect_drift(window, coupled, targets, "online")}
    assert not single["quoted_apr"].drifted and not single["loan_amount"].drifted
    result = domain_classifier_drift(window, coupled, targets, "online")
    assert result.drifted
    assert {name for name, _ in result.importance[:2]} == {"loan_amount", "quoted_apr"}
