"""What to simulate: :class:`SimConfig` (dates, size, seed, faults) and :class:`FaultSpec`.

A ``FaultSpec`` is a parsed ``--fault NAME:key=value,...`` with every default resolved (see
:mod:`funnelguard.simulator.catalogue`), so it can be applied without knowing the command line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["SimConfig", "FaultSpec", "model_version_for"]


@dataclass(frozen=True)
class FaultSpec:
    """One fault to inject, parsed and complete.

    Attributes:
        name: the fault's name in the catalogue (``serving_default``, ``label_lag`` ...).
        spec: the original text, recorded in ``fault_manifest.spec``.
        params: every key of the fault with its resolved value (defaults filled in), as sorted
            ``(key, value)`` pairs; read them with :meth:`get`.
    """

    name: str
    spec: str
    params: tuple[tuple[str, object], ...]

    def get(self, key: str, default: object = None) -> object:
        """The value of ``key`` (``default`` when the fault has no such key or it is unset)."""
        for k, v in self.params:
            if k == key:
                return v
        return default


@dataclass(frozen=True)
class SimConfig:
    """A simulation: ``days`` UTC partitions from ``start``, ``per_day`` mean impressions a day.

    The simulator's "now" is ``start + days`` at 00:00 UTC: nothing happens or loads after it.
    """

    start: dt.date
    days: int
    per_day: int
    seed: int
    faults: tuple[FaultSpec, ...] = ()

    @property
    def last(self) -> dt.date:
        """The last partition (``start + days - 1``)."""
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def now(self) -> dt.datetime:
        """``start + days`` at 00:00 UTC."""
        return dt.datetime.combine(self.start + dt.timedelta(days=self.days), dt.time(0), tzinfo=dt.UTC)


def model_version_for(start: dt.date) -> str:
    """The stand-in production model's version string, e.g. ``prod-2026.10``."""
    return f"prod-{start.year}.{start.month:02d}"
