"""``funnelguard estimate`` on the second project (tests/byow): its own stages (click -> signup
-> funded), partition ``event_date``, logged scores ``pred_*`` and owners. Its served model is
known only by its logged scores, so the estimate replays a model trained by ``funnelguard
train``. The fault: ``quoted_apr`` stuck at -9.0 for 40 % of ``channel = 'app'`` online rows of
the last day, scores recomputed."""

from __future__ import annotations

import pytest

FAST = ("--days", "3", "--norm-days", "5", "--draws", "100")
CONFIG = {"model": {"trunk": [16], "embedding_dim": 4, "head_hidden": 8, "dense_dim": 8,
                    "default_id_buckets": 50},
          "optim": {"batch_size": 256, "epochs": 3},
          "run": {"progress": False, "tensorboard": False, "checkpoint_every": 0},
          "guard": {"probe_every": 5}}


@pytest.fixture(scope="module")
def trained_model(marketplace, tmp_path_factory):
    """A model of the marketplace trained through the ``train`` job (a few seconds)."""
    import torch

    from funnelguard.commands import job
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from model.config import bind_config, config_from_dict

    project = load_project(marketplace.project_path)
    config = bind_config(config_from_dict(CONFIG), project.tasks,
                         project.feature_specs("offline"))
    out = tmp_path_factory.mktemp("estimate-model") / "model"
    engine = connect(marketplace.warehouse_url)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = job("train")(project, engine, marketplace.as_of, out_dir=out, config=config)
    finally:
        torch.set_num_threads(threads)
        engine.dispose()
    assert result.status == "pass", [f.message for f in result.failures]
    return out


def _estimate(run_cli, m, model, *extra):
    return run_cli("estimate", "--project", m.project_path, "--as-of", m.as_of.isoformat(),
                   "--model", model, *extra)


def test_quoted_apr_fault_is_flagged_on_day_zero_and_reaches_the_score_owner(
        run_cli, marketplace_faulted, trained_model):
    from funnelguard.project import load_project

    code, result = _estimate(run_cli, marketplace_faulted, trained_model, *FAST)
    assert code == 1
    failed = [f for f in result.findings if f.check == "estimated_performance" and not f.passed]
    last = f"event_date={marketplace_faulted.last.isoformat()}"
    assert {f.task for f in failed} >= {"signup", "funded"}  # funded matures in 10 days
    assert {f.segment for f in failed} == {last}
    project = load_project(marketplace_faulted.project_path)
    for f in failed:
        assert f.examples[0] == "quoted_apr" and f.feature == f"pred_{f.task}"
        assert f.dataset == "marketplace_features"
        # addressed to whoever owns the logged score in the features contract
        assert project.features.owner_of(f.feature).mention == "<!subteam^S0MKTDATA>"
    days = result.details["estimate"]["days"]
    assert result.details["estimate"]["partition_column"] == "event_date"
    assert {d["task"] for d in days} == {"click", "signup", "funded"}
    assert all(d["oracle_auc"] is None for d in days)  # no oracle table in this project


def test_the_clean_marketplace_flags_nothing(run_cli, marketplace, trained_model):
    code, result = _estimate(run_cli, marketplace, trained_model, *FAST)
    decided = [f for f in result.findings
               if f.check == "estimated_performance" and f.severity == "error"]
    assert code == 0, [f.message for f in result.failures]
    assert len(decided) == 3 * 3 and all(f.passed for f in decided)


def test_served_scores_alone_cannot_be_replayed_here(run_cli, marketplace):
    code, result = _estimate(run_cli, marketplace, "served")
    assert code == 2
    assert "known only by its logged scores" in result.error.message
    assert "--model" in result.error.message
