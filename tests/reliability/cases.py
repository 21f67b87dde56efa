"""The reliability battery's case tables, assembled in one order for its test files.

:data:`CASES` (bad inputs through the CLI) is the tables of ``cases_usage.py``,
``cases_paths.py``, ``cases_model.py``, ``cases_contracts.py`` and ``cases_alerts.py``, in that
order; :data:`CORRUPTIONS` (broken warehouses) is ``cases_warehouse.py``'s. What a row is lives
in ``case_types.py``; running one, in ``harness.py``.
"""

from __future__ import annotations

from tests.reliability.case_types import Case
from tests.reliability.cases_alerts import ALERT_CASES
from tests.reliability.cases_contracts import CONTRACT_CASES
from tests.reliability.cases_model import MODEL_CASES
from tests.reliability.cases_paths import PATH_CASES
from tests.reliability.cases_usage import USAGE_CASES
from tests.reliability.cases_warehouse import CORRUPTIONS

__all__ = ["CASES", "CORRUPTIONS"]

CASES: tuple[Case, ...] = (*USAGE_CASES, *PATH_CASES, *MODEL_CASES, *CONTRACT_CASES,
                           *ALERT_CASES)
