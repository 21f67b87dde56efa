"""One definition of "this value is the default": the vectorised ``default_mask`` that validate
counts with agrees with ``contracts.spec.is_default_value`` value by value, on both projects'
fields, and validate's ``default_rate`` counts are exactly the rows that definition marks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contracts import load_contract
from contracts.checks import default_mask
from contracts.commands import run_validate
from contracts.spec import FieldContract, is_default_value
from funnelguard.project import load_project
from funnelguard.warehouse import connect

# Values a warehouse may hand back: numbers of several types, numbers as text, near misses,
# strings in other cases, nulls, booleans.
VALUES = [-999, -999.0, "-999", " -999 ", -998.9, np.int64(-999), np.float64(-999.0), -9.0,
          np.float64(-9.0), "-9", "-9.0", 0, 0.0, "0", None, float("nan"), np.inf, "none",
          "None", "NONE", "na", "anon", "abc", "", True, False, 42, "gold"]


def _fields_with_defaults(contract):
    return [f for f in contract.fields if f.default is not None]


@pytest.fixture(scope="module")
def fields(marketplace):
    project = load_project(marketplace.project_path)
    found = _fields_with_defaults(project.features)
    found += _fields_with_defaults(load_contract("ranking_features"))
    kinds = {(f.logical_type, type(f.default).__name__) for f in found}
    assert {("number", "int"), ("number", "float"), ("integer", "int"),
            ("string", "str")} <= kinds, kinds
    return found


def test_mask_agrees_with_is_default_value_on_every_value(fields):
    series = pd.Series(VALUES, dtype=object)
    for f in fields:
        expected = [is_default_value(f, v) for v in VALUES]
        assert default_mask(series, f.default, numeric=f.is_numeric).tolist() == expected, f.name
        # the registered max_default_rate check infers "numeric" from the default's type
        assert default_mask(series, f.default).tolist() == expected, f.name


@pytest.mark.parametrize("spec", [
    FieldContract("zip_code", "string", default="0"),       # text that looks like a number
    FieldContract("opted_in", "boolean", default=False),    # compared as text: "False"
    FieldContract("rating", "integer", default=0),
], ids=lambda f: f.name)
def test_mask_agrees_where_text_and_numbers_meet(spec):
    series = pd.Series(VALUES, dtype=object)
    expected = [is_default_value(spec, v) for v in VALUES]
    assert any(expected)
    assert default_mask(series, spec.default, numeric=spec.is_numeric).tolist() == expected
    assert default_mask(series, spec.default).tolist() == expected


def test_mask_agrees_on_typed_columns(fields):
    for f in fields:
        if f.is_numeric:
            values = [float(f.default), 1.0, float("nan"), float(f.default) + 1e-9, -0.0]
            series = pd.Series(values, dtype="float64")
        else:
            values = [str(f.default), "x", None, str(f.default).upper()]
            series = pd.Series(values, dtype=object)
        mask = default_mask(series, f.default, numeric=f.is_numeric)
        assert mask.tolist() == [is_default_value(f, v) for v in values], f.name
        assert mask.tolist()[0] is True


def test_validate_counts_exactly_the_values_is_default_value_marks(marketplace_faulted):
    m = marketplace_faulted
    project = load_project(m.project_path)
    engine = connect(m.warehouse_url)
    try:
        result = run_validate(project, engine, m.last, environment="online")
        frame = project.read(engine, "features", "online", m.last)
    finally:
        engine.dispose()
    counted = {f.feature: f.count for f in result.findings if f.check == "default_rate"}
    assert counted["quoted_apr"] > 100  # the fault is among them
    for name, count in counted.items():
        spec = project.features.field(name)
        assert count == sum(is_default_value(spec, v) for v in frame[name]), name
