"""The progress a caller of the engine sees: the engine's milestones, and between them an
estimate on the clock, so that a job cut into few chunks still moves in small steps.

The job process knows progress only at milestones (input read, a chunk finished, outputs
written). A 120k-variant job is two chunks (100k + 20k records), so its milestones alone are
0 -> 5 % -> 80 % -> 95 % -> done. Each milestone therefore also says what will be done once
the work in flight finishes (`bound`) and how fast that work is expected to go (`pace`, from
the records per second of this job's finished chunks, or a prior before the first one).
Between milestones the estimate advances at that pace, never past `HEADROOM` of the way to the
bound: it never claims work that has not finished. What is shown moves at most `MAX_STEP` per
update, so a milestone that comes earlier than the estimate expected is caught up with over a
few updates (each `TICK_SECONDS` apart) instead of in one jump; when the result is ready the
rest is shown at once.

Callers that store progress (the annotator's lease keeper) still write it at most once per
few seconds: updates here are cheap (a float), not table writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Largest change of the shown progress in one update.
MAX_STEP = 0.05
# How far toward the in-flight bound the estimate may go on the clock alone.
HEADROOM = 0.9
# How often the caller's process updates the estimate while it waits for the engine.
TICK_SECONDS = 0.1


class ProgressEstimate:
    """Turns milestones (value, bound, pace) into a monotonic progress in [0, 1] for
    `callback`, in steps of at most MAX_STEP. Not thread-safe: one caller drives it."""

    def __init__(
        self,
        callback: Callable[[float], None] | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = callback
        self._clock = clock
        self._value = 0.0
        self._bound = 0.0
        self._pace = 0.0
        self._base = 0.0  # where the clock-driven estimate starts from
        self._at = clock()
        self.shown = 0.0

    def milestone(self, value: float, bound: float | None = None, pace: float = 0.0) -> None:
        """Work certainly done (`value`), done once the work in flight finishes (`bound`),
        and the expected progress per second of that work (`pace`)."""
        value = min(max(value, self._value), 1.0)
        self._value = value
        self._bound = min(max(bound if bound is not None else value, value), 1.0)
        self._pace = max(pace, 0.0)
        # From what is shown when the estimate ran ahead of the milestone: going on at the
        # new pace rather than standing still until the clock catches up (the bound still
        # caps it).
        self._base = max(value, self.shown)
        self._at = self._clock()
        self.tick()

    def tick(self) -> None:
        """Show the estimate for now, at most MAX_STEP past what was shown."""
        self._show(min(self._target(), self.shown + MAX_STEP))

    def finish(self) -> None:
        """The result is ready: show the remaining steps up to 1.0."""
        self._value = self._bound = 1.0
        while self.shown < 1.0:
            self._show(min(1.0, self.shown + MAX_STEP))

    def _target(self) -> float:
        if self._bound <= self._value:
            return self._value
        ceiling = self._value + HEADROOM * (self._bound - self._value)
        return max(self._value, min(self._base + self._pace * (self._clock() - self._at), ceiling))

    def _show(self, value: float) -> None:
        value = round(value, 4)
        if value > self.shown:
            self.shown = value
            if self._callback is not None:
                self._callback(value)
