"""Progress where a reader waits: plain lines, never a redrawn bar.

A book page keeps every line a cell prints, so a bar that redraws itself
becomes a wall of text there. :class:`LineProgress` prints one line every so
often with the elapsed time and an estimate of what is left, for any loop of
known length (unpacking an archive, decoding batches, a custom training loop);
``dlbook.training.EpochLog`` does the same for ``model.fit``.

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Callable


def duration(seconds: float) -> str:
    """``seconds`` as a reader reads it: ``"8.4 s"``, ``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def time_left(done: int, total: int, elapsed: float, first: float | None = None) -> float | None:
    """Seconds left for ``total - done`` more units of work at the pace so far.

    ``first``, if given, is the time the first unit took; it is left out of the
    pace when more than one unit is done (a first epoch includes compiling).
    None when nothing is done yet.
    """
    if done <= 0:
        return None
    if first is not None and done > 1:
        pace = (elapsed - first) / (done - 1)
    else:
        pace = elapsed / done
    return max(0.0, pace * (total - done))


def status_line(label: str, done: int, total: int, elapsed: float, first: float | None = None,
                unit: str = "", detail: str = "") -> str:
    """One progress line: ``"label: 3/10 epochs, loss 0.41; 12 s elapsed, about 28 s left"``."""
    left = time_left(done, total, elapsed, first)
    head = f"{label}: {done:,}/{total:,}{' ' + unit if unit else ''}"
    if detail:
        head += f", {detail}"
    tail = f"{duration(elapsed)} elapsed"
    if done < total and left is not None:
        tail += f", about {duration(left)} left"
    return f"{head}; {tail}"


class LineProgress:
    """Report a loop of ``total`` steps in at most ``lines`` printed lines.

    A line is printed after the first step (the reader learns at once that work
    started and how fast it goes), then each time another ``total / lines``
    steps are done, and at the end. With ``first_is_slow`` (a first training
    step or epoch that compiles) the estimate leaves the first step out of the
    pace. Output goes to standard output: on a book
    page, standard error is flagged as log spam.

    Example::

        progress = LineProgress("decoding CIFAR-10", total=6, unit="batches")
        for batch in batches:
            ...
            progress.update()
    """

    def __init__(self, label: str, total: int, unit: str = "", lines: int = 5, first_is_slow: bool = False,
                 stream: IO[str] | None = None, clock: Callable[[], float] = time.monotonic):
        if total < 1 or lines < 1:
            raise ValueError("total and lines must be at least 1")
        self.label, self.total, self.unit, self.first_is_slow = label, total, unit, first_is_slow
        self.every = max(1, -(-total // lines))  # ceil(total / lines)
        self.stream = stream if stream is not None else sys.stdout
        self.clock = clock
        self.start = clock()
        self.first: float | None = None
        self.done = 0

    def update(self, n: int = 1, detail: str = "") -> None:
        """Count ``n`` more steps done; print a line when one is due."""
        before = self.done
        self.done = min(self.total, self.done + n)
        elapsed = self.clock() - self.start
        if before == 0:
            self.first = elapsed
        due = before == 0 or self.done == self.total or self.done // self.every > before // self.every
        if due:
            first = self.first if self.first_is_slow else None
            line = status_line(self.label, self.done, self.total, elapsed, first, self.unit, detail)
            try:
                print(line, file=self.stream, flush=True)
            except (OSError, ValueError):  # a closed stream must not stop the work
                pass
