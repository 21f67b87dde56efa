"""Errors of the label-maturity package, each with its exit code.

``LabelFrameError`` means a labels frame handed to the gate or the training-set builder lacks
a column or holds values of the wrong kind; ``MaturityConfigError`` means the labels contract
asks for something the as-of rule cannot honour (an unknown stage, a non-positive window, stages
counting from different impression timestamps, a stage without a loaded-at column); ``TrainingSetError`` means the requested training set
cannot be built as asked (no matured day for the holdout, a bad downsampling rate). All are
input errors (exit 2): what was expected, what was found, where.
"""

from __future__ import annotations

from funnelguard.errors import InputError

__all__ = ["LabelFrameError", "MaturityConfigError", "TrainingSetError"]


class LabelFrameError(InputError):
    """A labels frame is missing columns or holds unparseable timestamps."""


class MaturityConfigError(InputError):
    """The maturity windows from the labels contract cannot be applied."""


class TrainingSetError(InputError):
    """The training set cannot be built with the requested window, holdout or sampling."""
