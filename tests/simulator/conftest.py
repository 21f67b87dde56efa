"""Fixtures of the simulator tests: the default clean warehouse read into frames once."""

from __future__ import annotations

import pandas as pd
import pytest
from sim_tables import read_warehouse


@pytest.fixture(scope="session")
def clean_tables(clean_warehouse) -> dict[str, pd.DataFrame]:
    """The default clean warehouse (24 days x 3000, seed 7), read once (do not mutate)."""
    return read_warehouse(clean_warehouse)
