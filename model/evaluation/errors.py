"""Errors of the evaluation package, each with its exit code (via :mod:`funnelguard.errors`).

Bad input — a model directory that is not one, an impression key that is not in the warehouse, a
thresholds file with an unknown key, a holdout with no rows — is an :class:`EvaluationInputError`
(exit 2), and its message says what was expected, what was found and where. A metric that cannot
be computed (no positives, constant scores) is not an error: it is ``None`` with a finding.
"""

from __future__ import annotations

from funnelguard.errors import InputError

__all__ = [
    "EvaluationInputError",
    "ModelNotFound",
    "ImpressionNotFound",
    "ThresholdsError",
    "EmptyHoldout",
]


class EvaluationInputError(InputError):
    """Base of the evaluation package's input errors (exit 2)."""


class ModelNotFound(EvaluationInputError):
    """``--model``/``--champion`` is neither a model directory nor ``served``."""


class ImpressionNotFound(EvaluationInputError):
    """``explain KEY``: the key is missing from the features contract's online or offline table."""


class ThresholdsError(EvaluationInputError):
    """A thresholds file is malformed (file, key, expected, found)."""


class EmptyHoldout(EvaluationInputError):
    """The matured holdout as of the date holds no rows for any task."""
