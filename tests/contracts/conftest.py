"""Fixtures of the contract tests: one faulted warehouse shared by the partition and CLI tests."""

from __future__ import annotations

import datetime as dt

import pytest

START = dt.date(2026, 10, 1)
DAYS = 4
D1, D2, D3, D4 = (START + dt.timedelta(days=i) for i in range(DAYS))

# One fault per (environment, partition, feature), so each can be told apart from the others.
FAULTS = (
    f"duplicate_keys:share=0.02,env=offline,day={D1}",
    f"null_burst:feature=credit_utilization,share=0.2,day={D2}",
    f"nan_burst:feature=item_apr,share=0.05,day={D3}",
    f"outlier_burst:feature=credit_score,share=0.1,env=online,day={D4}",
    f"unit_mismatch:feature=merchant_approval_rate_90d,share=0.3,day={D4}",
    f"category_remap:feature=device_type,rename=ios/tablet,day={D4}",
)



@pytest.fixture(scope="session")
def faulted_url(warehouse) -> str:
    """A 4-day warehouse with every fault a contract can see (see FAULTS)."""
    return warehouse(*FAULTS, days=DAYS, per_day=2000)
