"""Same seed, same warehouse; another seed, another warehouse; --replace rebuilds, else refuses."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa
from sim_tables import TABLES, read_tables

from funnelguard.errors import InputError
from funnelguard.simulator import SimConfig, parse_fault, simulate
from funnelguard.simulator.errors import SimConfigError, WarehouseNotEmptyError
from funnelguard.warehouse import connect

START = dt.date(2026, 3, 2)


def _build(path, seed: int, *faults: str, days: int = 6, per_day: int = 500) -> dict:
    engine = connect(f"sqlite:///{path}", must_exist=False)
    config = SimConfig(START, days, per_day, seed,
                       tuple(parse_fault(f, start=START, days=days) for f in faults))
    simulate(engine, config)
    tables = read_tables(engine)
    engine.dispose()
    return tables


def test_same_seed_gives_identical_tables(tmp_path):
    first = _build(tmp_path / "a.db", 11, "null_burst:feature=item_apr,share=0.3")
    second = _build(tmp_path / "b.db", 11, "null_burst:feature=item_apr,share=0.3")
    for name in (*TABLES, "fault_manifest"):
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True, obj=name)


def test_different_seed_gives_different_tables(tmp_path):
    first = _build(tmp_path / "a.db", 11)
    second = _build(tmp_path / "b.db", 12)
    assert len(first["impressions"]) != len(second["impressions"]) or not first[
        "impressions"]["user_id"].equals(second["impressions"]["user_id"])
    common = min(len(first["offline_features"]), len(second["offline_features"]))
    differing = (first["offline_features"]["credit_score"].iloc[:common].to_numpy()
                 != second["offline_features"]["credit_score"].iloc[:common].to_numpy()).mean()
    assert differing > 0.5


def test_non_empty_warehouse_is_refused_then_replaced(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = connect(url, must_exist=False)
    simulate(engine, SimConfig(START, 2, 200, 1))
    with pytest.raises(WarehouseNotEmptyError) as err:
        simulate(engine, SimConfig(START, 2, 300, 2))
    assert isinstance(err.value, InputError)
    message = str(err.value)
    assert "expected an empty warehouse" in message and "impressions (" in message
    assert "replace" in message and str(tmp_path) in message
    summary = simulate(engine, SimConfig(START, 3, 300, 2), replace=True)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT COUNT(*) FROM impressions")).scalar_one()
        days = conn.execute(sa.text("SELECT COUNT(DISTINCT ds) FROM labels")).scalar_one()
    assert rows == summary.rows["impressions"] and days == 3
    engine.dispose()


def test_empty_tables_are_not_refused(tmp_path):
    from funnelguard.warehouse import metadata

    engine = connect(f"sqlite:///{tmp_path / 'w.db'}", must_exist=False)
    metadata.create_all(engine)
    summary = simulate(engine, SimConfig(START, 2, 200, 1))
    assert summary.rows["impressions"] > 0
    engine.dispose()


@pytest.mark.parametrize(("days", "per_day", "seed", "needle"), [
    (0, 100, 1, "days=0"), (3, 0, 1, "per_day=0"), (3, 100, -1, "seed >= 0"),
])
def test_impossible_config_is_an_input_error(days, per_day, seed, needle):
    engine = connect("sqlite://", must_exist=False)
    with pytest.raises(SimConfigError, match=needle):
        simulate(engine, SimConfig(START, days, per_day, seed))
