"""Fixtures for the monitor tests: a small hand-built contract and hand-made partitions."""

from __future__ import annotations

import pytest

from contracts.spec import CheckPolicy, Contract, FieldContract, Owner


@pytest.fixture(scope="session")
def small_contract() -> Contract:
    """Four features with the properties the monitors read: a PII id, an absolute and a
    relative tolerance, a categorical with a default, a default that is not enforced."""
    fields = (
        FieldContract("impression_id", "string", role="key", primary_key=True),
        FieldContract("user_id", "string", role="id", pii=True, default="unknown",
                      max_default_rate={"offline": 0.5, "online": 0.5}),
        FieldContract("income", "number", pii=True, default=-1.0, relative_tolerance=0.01,
                      max_default_rate={"offline": 0.5, "online": 0.5}),
        FieldContract("ctr", "number", default=0.0, numeric_tolerance=0.005),
        FieldContract("odds", "number", default=0.0, max_default_rate={"offline": 0.5, "online": 0.3}),
        FieldContract("device_type", "string", role="category", default="unknown",
                      max_default_rate={"offline": 0.5, "online": 0.5}),
        FieldContract("score_click", "number", role="score", environments=("online",)),
    )
    return Contract(name="small", path="<hand-made>", version="1", owner=Owner("team"),
                    tables={"offline": "offline_features", "online": "serving_log"},
                    fields=fields, default_policy=CheckPolicy(0.0, "error"),
                    segments=("device_type",))


@pytest.fixture(scope="session")
def ranking_contract() -> Contract:
    from contracts import load_contract

    return load_contract("ranking_features")
