"""Progress on long work: a bar on a terminal, plain periodic lines in a log.

A tqdm bar redraws itself with carriage returns, which reads as spam in an Airflow task log or
a CI log. :func:`progress` gives the bar only when the stream is a terminal; elsewhere it writes
one plain line (``train: 1200/4800 steps (25 %), 41 s``) at most every ``every_seconds`` and one
when the work ends.
"""

from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["progress", "PlainProgress"]


class PlainProgress:
    """A tqdm-like counter that writes plain lines at most every ``every_seconds``."""

    def __init__(self, total: int, desc: str, *, unit: str, initial: int = 0,
                 every_seconds: float = 30.0, stream: IO[str] | None = None,
                 clock=time.monotonic) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = initial
        self.every = every_seconds
        self.stream = stream or sys.stderr
        self._clock = clock
        self._started = self._last = clock()

    def _line(self) -> None:
        share = f" ({self.n / self.total:.0%})" if self.total else ""
        elapsed = self._clock() - self._started
        print(f"{self.desc}: {self.n}/{self.total} {self.unit}s{share}, {elapsed:.0f} s",
              file=self.stream, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._clock() - self._last >= self.every:
            self._last = self._clock()
            self._line()

    def close(self) -> None:
        self._line()


def progress(total: int, desc: str, *, unit: str = "step", initial: int = 0,
             stream: IO[str] | None = None, every_seconds: float = 30.0):
    """A tqdm bar when ``stream`` (stderr) is a terminal, else a :class:`PlainProgress`."""
    stream = stream or sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, file=stream)
    return PlainProgress(total, desc, unit=unit, initial=initial, every_seconds=every_seconds,
                         stream=stream)
