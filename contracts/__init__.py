"""Data contracts: ODCS v3 files with owners, loaded strictly, compiled to Pandera, run as findings.

``load_contract("ranking_features")`` (or a path) returns a typed
:class:`~contracts.spec.Contract`; ``compile_schema(contract, environment)`` turns it into a
``pandera.pandas.DataFrameSchema``; ``validate_partition(contract, environment, engine, partition)``
validates one warehouse partition in bounded memory and returns a
:class:`~funnelguard.findings.RunResult` of findings per (column, check). Heavy imports (pandas,
pandera) happen only when the compiler or runner is used.
"""

from __future__ import annotations

from typing import Any

from contracts.errors import ContractError, MissingDataError, Problem
from contracts.loader import PACKAGED, lint_contract, load_contract, resolve_contract_path
from contracts.spec import CheckPolicy, Contract, FieldContract, MaturityWindow, Owner

__all__ = [
    "load_contract",
    "lint_contract",
    "resolve_contract_path",
    "PACKAGED",
    "compile_schema",
    "validate_partition",
    "validate_frame",
    "Contract",
    "FieldContract",
    "CheckPolicy",
    "Owner",
    "MaturityWindow",
    "ContractError",
    "MissingDataError",
    "Problem",
]


def __getattr__(name: str) -> Any:
    # The compiler and runner import pandas and pandera: load them only when asked for.
    if name == "compile_schema":
        from contracts.compiler import compile_schema

        return compile_schema
    if name in ("validate_partition", "validate_frame"):
        from contracts import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'contracts' has no attribute {name!r}")
