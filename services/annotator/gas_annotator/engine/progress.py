"""The progress a caller of the engine sees: the engine's milestones, and between them an
estimate on the clock, so that a job cut into few chunks still moves in small steps.

The job process knows progress only at milestones (input read, a chunk finished, outputs
written). A 120k-variant job is two chunks (100k + 20k records), so its milestones alone are
0 -> 5 % -> 80 % -> 95 % -> done. Each milestone therefore also says what will be done once
the work in flight finishes (`bound`) and how fast that work is expected to go (`pace`, from
the records per second of this job's finished chunks, or a prior before the first one; see
ChunkProgress, the job process's side).
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
# Before a job's first chunk finishes, a worker is expected to go through records at this
# fraction of the rate validation reads them (the same machine under the same load; measured
# on the chr21 bundle: ~250k records/s read, ~70k/s per chunk worker).
CHUNK_TO_READ_RATE = 0.3


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

    def milestone(
        self, value: float, bound: float | None = None, pace: float = 0.0,
        estimate: float | None = None,
    ) -> None:
        """Work certainly done (`value`), done once the work in flight finishes (`bound`),
        the expected progress per second of that work (`pace`) and, if known, an estimate for
        now that credits the work in flight (`estimate`)."""
        value = min(max(value, self._value), 1.0)
        self._value = value
        self._bound = min(max(bound if bound is not None else value, value), 1.0)
        self._pace = max(pace, 0.0)
        # From what is shown when the estimate ran ahead of the milestone: going on at the
        # new pace rather than standing still until the clock catches up (the bound still
        # caps it).
        self._base = max(value, self.shown, estimate or 0.0)
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


class ChunkProgress:
    """The job process's side: milestones from the input read and the chunks' records.

    Progress is 5 % for reading the input (the share of its bytes read), 90 % for the records
    in finished chunks (against the total extrapolated from the bytes read; exact once the
    input is read) and 5 % for the outputs (the engine reports those itself). Each report also
    says what is done once the chunks in flight finish (`bound`), how fast they are expected
    to go (`pace`: records per second per worker of this job's finished chunks, before the
    first CHUNK_TO_READ_RATE of the rate the input was read at, or the prior when too little
    was read to tell; times the chunks running) and an estimate for now that credits the
    running chunks with that rate since they started (never more than HEADROOM of them).
    Chunks run first in, first out on `workers` workers, as the engine's runner starts them.
    """

    def __init__(
        self,
        report: Callable[[float, float | None, float, float | None], None],
        *,
        workers: int,
        records_seen: Callable[[], int],
        prior_records_per_second: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._report = report
        self._workers = max(workers, 1)
        self._records_seen = records_seen
        self._prior = prior_records_per_second
        self._clock = clock
        self._read = 0.0
        self._began = clock()
        self._done = 0
        self._busy_seconds = 0.0
        # Submitted, unfinished chunks in submit order: index -> (records, started at).
        self._in_flight: dict[int, tuple[int, float | None]] = {}

    def read(self, fraction: float) -> None:
        self._read = min(max(fraction, self._read), 1.0)
        self._send()

    def submitted(self, index: int, records: int) -> None:
        self._in_flight[index] = (records, None)
        self._start_waiting()
        self._send()

    def finished(self, index: int, records: int) -> None:
        now = self._clock()
        _, started = self._in_flight.pop(index, (records, None))
        if started is not None:
            self._busy_seconds += now - started
        self._done += records
        self._start_waiting()
        self._send()

    def _start_waiting(self) -> None:
        """Chunks a free worker has taken (the oldest submitted ones)."""
        running = sum(1 for _, started in self._in_flight.values() if started is not None)
        for index, (records, started) in self._in_flight.items():
            if running >= self._workers:
                return
            if started is None:
                self._in_flight[index] = (records, self._clock())
                running += 1

    def _first_rate(self, now: float) -> float:
        seen, elapsed = self._records_seen(), now - self._began
        if seen < 1_000 or elapsed <= 0:
            return self._prior
        return CHUNK_TO_READ_RATE * seen / elapsed

    def _send(self) -> None:
        now = self._clock()
        in_flight = sum(records for records, _ in self._in_flight.values())
        total = max(self._records_seen() / max(self._read, 1e-6), self._done + in_flight, 1)
        per_worker = (self._done / self._busy_seconds
                      if self._done and self._busy_seconds > 0 else self._first_rate(now))
        running = [(records, started) for records, started in self._in_flight.values()
                   if started is not None]
        credit = sum(min((now - started) * per_worker, HEADROOM * records)
                     for records, started in running)

        def share(records: float) -> float:
            return 0.05 * self._read + 0.9 * min(records / total, 1.0)

        self._report(share(self._done), share(self._done + in_flight),
                     0.9 * per_worker * len(running) / total, share(self._done + credit))
