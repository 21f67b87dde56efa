"""Errors of the simulator: a bad fault spec, a bad configuration, a warehouse already in use.

All are :class:`funnelguard.errors.InputError` (exit 2): the user asked for something the
simulator cannot build. Each message says what was expected, what was found and where (the
fault spec text or the warehouse URL).
"""

from __future__ import annotations

from funnelguard.errors import InputError

__all__ = ["FaultSpecError", "SimConfigError", "WarehouseNotEmptyError"]


class FaultSpecError(InputError):
    """A ``--fault NAME:key=value,...`` spec names an unknown fault, key or value."""


class SimConfigError(InputError):
    """The size or dates of a simulation are impossible (no days, no impressions)."""


class WarehouseNotEmptyError(InputError):
    """The target warehouse already holds simulated tables and ``replace`` was not given."""
