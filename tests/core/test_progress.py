"""Progress: a bar only on a terminal; plain periodic lines in a log (no carriage returns)."""

from __future__ import annotations

import io

from funnelguard.progress import PlainProgress, progress


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_log_gets_plain_lines_at_most_every_interval():
    out, clock = io.StringIO(), _Clock()
    bar = PlainProgress(400, "train", unit="step", every_seconds=30, stream=out, clock=clock)
    for _ in range(100):
        clock.now += 1  # 100 steps in 100 s: a line at 30, 60, 90 s
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines == ["train: 30/400 steps (8%), 30 s", "train: 60/400 steps (15%), 60 s",
                     "train: 90/400 steps (22%), 90 s", "train: 100/400 steps (25%), 100 s"]
    assert "\r" not in out.getvalue()


def test_not_a_terminal_means_no_bar():
    out = io.StringIO()
    assert isinstance(progress(10, "x", stream=out), PlainProgress)


def test_a_terminal_gets_the_bar():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    bar = progress(10, "x", stream=Tty())
    assert type(bar).__name__ == "tqdm"
    bar.close()
