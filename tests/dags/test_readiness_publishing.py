"""The nightly job's store logic: is a partition ready to train on, and publishing a champion."""

from __future__ import annotations

import pytest

from funnelguard.findings import ErrorInfo, Finding, RunResult
from funnelguard.orchestration.publishing import champion, publish_model
from funnelguard.orchestration.readiness import snapshot_marker, snapshot_readiness
from monitors.store import open_store

D = "2026-10-24"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'results.db'}")
    pg = request.getfixturevalue("pg_url")
    import sqlalchemy as sa

    from monitors.store.models import Base

    s = open_store(pg)
    with s.engine.begin() as conn:  # a clean slate in the shared test database
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(sa.delete(table))
    return s


def _passing(command, environment=None):
    return RunResult(command, D, dataset="ranking_features", environment=environment,
                     findings=(Finding(command if command != "validate" else "range", True),))


def test_not_ready_until_both_environments_are_marked(store):
    store.record_run(_passing("validate", "offline"))
    store.record_run(snapshot_marker("offline", D, ["validate_features"]))
    readiness = snapshot_readiness(store, D)
    assert (readiness.ready, readiness.missing, readiness.blocking) == (False, ("online",), ())
    store.record_run(_passing("drift"))
    store.record_run(snapshot_marker("online", D, ["drift"]))
    assert snapshot_readiness(store, D).ready
    assert not snapshot_readiness(store, "2026-10-23").ready


def test_an_error_severity_failure_blocks_and_is_named(store):
    store.record_run(RunResult("drift", D, dataset="ranking_features", findings=(
        Finding("default_rate", False, "error", feature="approval_odds", environment="online",
                segment="device_type=android", message="default rate 97 % vs 0 %"),
        Finding("drift", False, "warning", feature="credit_score", environment="offline",
                message="drifted against the window"),
    )))
    readiness = snapshot_readiness(store, D)
    assert not readiness.ready
    assert readiness.blocking == (
        "drift default_rate online approval_odds device_type=android: default rate 97 % vs 0 %",)
    assert "1 error-severity problems" in readiness.describe()


def test_warnings_do_not_block(store):
    store.record_run(RunResult("drift", D, dataset="ranking_features", findings=(
        Finding("drift", False, "warning", feature="credit_score", environment="offline"),)))
    for env in ("offline", "online"):
        store.record_run(snapshot_marker(env, D, ["drift"]))
    assert snapshot_readiness(store, D).ready


def test_a_check_that_could_not_run_blocks_until_a_later_run_succeeds(store):
    store.record_run(RunResult("skew", D, environment="online",
                               error=ErrorInfo("environment", "database unreachable")))
    for env in ("offline", "online"):
        store.record_run(snapshot_marker(env, D, ["skew"]))
    assert snapshot_readiness(store, D).blocking == ("skew (online) could not run: database unreachable",)
    store.record_run(RunResult("skew", D, dataset="ranking_features", environment="online",
                               findings=(Finding("replay_skew", True),)))
    assert snapshot_readiness(store, D).ready


def test_publish_copies_the_model_and_keeps_one_champion(store, tmp_path):
    assert champion(store) is None
    first = tmp_path / "candidates" / "2026-10-24"
    first.mkdir(parents=True)
    (first / "weights.pt").write_bytes(b"one")
    published = publish_model(store, model_dir=first, as_of="2026-10-24",
                              published_root=tmp_path / "published")
    assert published.version == "funnel-asof-2026-10-24"
    assert (tmp_path / "published" / published.version / "weights.pt").read_bytes() == b"one"

    second = tmp_path / "candidates" / "2026-10-25"
    second.mkdir()
    (second / "weights.pt").write_bytes(b"two")
    publish_model(store, model_dir=second, as_of="2026-10-25", published_root=tmp_path / "published")
    # Rerunning the same night replaces its model instead of adding one.
    (second / "weights.pt").write_bytes(b"two, rerun")
    again = publish_model(store, model_dir=second, as_of="2026-10-25",
                          published_root=tmp_path / "published")
    assert champion(store) == again
    assert (tmp_path / "published" / again.version / "weights.pt").read_bytes() == b"two, rerun"
    from monitors.store.models import ModelRow

    with store.session() as s:
        rows = sorted((r.version, r.is_champion) for r in s.query(ModelRow))
    assert rows == [("funnel-asof-2026-10-24", False), ("funnel-asof-2026-10-25", True)]


def test_publish_reuses_the_version_train_recorded(store, tmp_path):
    from monitors.store.models import ModelRow

    out = tmp_path / "candidates" / "2026-10-25"
    out.mkdir(parents=True)
    with store.session() as s, s.begin():
        s.add(ModelRow(version="funnel-2026-10-25-abcd1234", path=str(out), as_of="2026-10-25"))
    published = publish_model(store, model_dir=out, as_of="2026-10-25",
                              published_root=tmp_path / "published")
    assert published.version == "funnel-2026-10-25-abcd1234"
    assert published.path == str(tmp_path / "published" / "funnel-2026-10-25-abcd1234")
    with store.session() as s:
        assert s.query(ModelRow).count() == 1


def test_publish_refuses_a_missing_directory(store, tmp_path):
    from funnelguard.errors import InputError

    with pytest.raises(InputError, match="expected a trained model directory to publish"):
        publish_model(store, model_dir=tmp_path / "nope", as_of="2026-10-25",
                      published_root=tmp_path / "published")
