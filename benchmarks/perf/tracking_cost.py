"""(g) What ``--log`` costs: the same training without tracking and with each tracker.

The training: Naive on Split-MNIST's first two training experiences, built as the runner builds it
with the tracker's loss plugin among its plugins; after each experience, the accuracy-matrix row
the runner logs. Naive's iterations are the cheapest of all strategies, so the share tracking
takes of them is the largest. Each round opens a fresh tracker per side, as every run does, and
the sides (no tracking, then each installed tracker) take turns. Per tracker:

* steady state, the second experience (the target): the seconds spent inside the tracker's calls
  (the loss every ``LOSS_EVERY`` iterations, the row) plus the CPU seconds its background processes
  (W&B's service) used, each beyond the untracked side's, over the training time without tracking. Both
  are measured directly, so the share holds on a busy machine; the plain side-by-side ratios of
  training time with / without (wall and this process's CPU) are reported beside it, with the
  spread of the untracked runs, which on a shared 2-core machine is wider than the target;
* fixed per run: opening the tracker (MLflow's run creation, ``wandb.init`` starting its service),
  the first experience's calls (files created on the first write, W&B's first log) and closing.
  The first open in a process also imports the client library; a sweep runs each config in a
  fresh worker process, so that is what each run of a sweep pays.

W&B runs offline, as ``--log wandb`` does; a tracker whose package is missing is reported as skipped.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psutil

import benchmarks.perf.targets as targets
from benchmarks.perf.setups import build_strategy, strategy_setup
from benchmarks.perf.timing import Row, Timing, interleaved_rounds, ms
from benchmarks.tracking import BACKENDS, LOSS_EVERY, Tracking, installed, missing
from benchmarks.tracking.tracker import Tracker

NONE = "none"  # the side without tracking
# Seconds of each round, per side: opening the tracker; inside its calls during the first
# experience; the second experience's training + row (wall, this process's CPU, its child
# processes' CPU) and the time inside the tracker's calls then; finishing and closing.
PARTS = ("open", "first_calls", "train", "train_cpu", "background_cpu", "in_calls", "close")


def children_cpu_seconds() -> float:
    """CPU seconds used so far by this process's live child processes (W&B's service and its system
    monitor): work a tracker does beside the training loop. Counted in clock ticks (10 ms)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue  # ended since it was listed
    return total


class TimedTracker(Tracker):
    """A Tracker that adds up the seconds spent in its loss and row calls (those made during training)."""

    def __init__(self, tracking: Tracking | None, config):
        self.seconds = 0.0
        super().__init__(tracking, config)

    def _timed(self, call, *args) -> None:
        start = time.perf_counter()
        call(*args)
        self.seconds += time.perf_counter() - start

    def loss(self, step: int, value: float) -> None:
        self._timed(super().loss, step, value)

    def row(self, accuracies: list[float]) -> None:
        self._timed(super().row, accuracies)


@dataclass(frozen=True)
class TrackingCost:
    key: ClassVar[str] = "tracking"

    iterations: int  # of the timed (second) experience
    loss_every: int
    sides: dict[str, dict[str, Timing]]  # NONE and each tracker measured -> PARTS -> seconds
    first_open: dict[str, float]  # tracker -> its first open in this process (the import included)
    skipped: dict[str, str]  # tracker -> why it was not measured

    @property
    def trackers(self) -> list[str]:
        return [side for side in self.sides if side != NONE]

    def _median(self, side: str, part: str) -> float:
        return self.sides[side][part].median

    def _beyond_untracked(self, tracker: str, part: str) -> float:
        return max(0.0, self._median(tracker, part) - self._median(NONE, part))

    def steady_seconds(self, tracker: str) -> float:
        """Per experience: inside the tracker's calls, plus its background processes' CPU, each beyond
        the untracked side's (the runner calls a tracker without writers too; W&B's service, once
        started, stays up for the whole process)."""
        return self._beyond_untracked(tracker, "in_calls") + self._beyond_untracked(tracker, "background_cpu")

    def overhead(self, tracker: str) -> float:
        """The steady-state cost as a share of the training time without tracking (the target)."""
        return self.steady_seconds(tracker) / self._median(NONE, "train")

    def side_by_side(self, tracker: str, part: str = "train") -> float:
        """Training time with ``tracker`` over without, minus 1: ``train`` (wall) or ``train_cpu``."""
        return self._median(tracker, part) / self._median(NONE, part) - 1

    def fixed_seconds(self, tracker: str) -> float:
        return sum(self._median(tracker, part) for part in ("open", "first_calls", "close"))

    def rows(self) -> list[Row]:
        base, untracked = self._median(NONE, "train"), self.sides[NONE]["train"].samples
        rows = []
        for t in self.trackers:
            rows.append(
                Row(
                    f"(g) `--log {t}`, steady state: its calls + background CPU per experience / training without"
                    f" tracking (Naive, {self.iterations} iterations, loss every {self.loss_every}, the row);"
                    " side by side, training with / without",
                    f"{ms(self.steady_seconds(t))} / {ms(base)} = {self.overhead(t):.2%};"
                    f" side by side: wall {self.side_by_side(t):+.1%}, CPU {self.side_by_side(t, 'train_cpu'):+.1%}"
                    f" (untracked runs: {ms(min(untracked))} to {ms(max(untracked))})",
                    f"≤ {targets.TRACKING_OVERHEAD:.0%}",
                    self.overhead(t) <= targets.TRACKING_OVERHEAD,
                )
            )
        if self.trackers:
            rows.append(
                Row(
                    "(g) fixed cost per run: opening the tracker (its first open in a process, as in each sweep"
                    " worker, with the import) + the first experience's calls + closing",
                    "; ".join(
                        f"{t} {ms(self._median(t, 'open'))} ({ms(self.first_open[t])})"
                        f" + {ms(self._median(t, 'first_calls'))} + {ms(self._median(t, 'close'))}"
                        for t in self.trackers
                    ),
                )
            )
        return rows + [Row(f"(g) `--log {t}`", why) for t, why in self.skipped.items()]

    def to_json(self) -> dict[str, Any]:
        return {
            "what": "Naive on Split-MNIST train experiences 0 and 1, a row after each; experience 1 timed",
            "iterations": self.iterations,
            "loss_every": self.loss_every,
            "seconds": {side: {part: t.to_json() for part, t in parts.items()} for side, parts in self.sides.items()},
            "first_open_seconds": self.first_open,
            "steady_seconds": {t: self.steady_seconds(t) for t in self.trackers},
            "overhead": {t: self.overhead(t) for t in self.trackers},
            "side_by_side": {t: {p: self.side_by_side(t, p) for p in ("train", "train_cpu")} for t in self.trackers},
            "fixed_seconds": {t: self.fixed_seconds(t) for t in self.trackers},
            "skipped": self.skipped,
        }


def measure_tracking(bench, repeats: int, trackers=BACKENDS, loss_every: int = LOSS_EVERY) -> TrackingCost:
    from benchmarks import metrics
    from benchmarks.config import make_run_config
    from benchmarks.runner import AccuracyPlugin

    first, second = bench.train_stream[0], bench.train_stream[1]
    config = make_run_config(benchmark=bench.name, strategy="naive", seed=0)
    row = [0.5] * len(bench.test_stream)  # what is logged, not its value, is what costs
    final = {**metrics.summarise([row, row]), "memory_bytes": 0}
    measured = [t for t in trackers if installed(t)]
    skipped = {t: f"skipped: needs {missing(t)}" for t in trackers if not installed(t)}

    with tempfile.TemporaryDirectory(prefix="epinet-perf-tracking-") as scratch:

        def side(tracker: str) -> dict[str, float]:
            tracking = None if tracker == NONE else Tracking((tracker,), Path(scratch), "perf", loss_every=loss_every)
            start = time.perf_counter()
            with TimedTracker(tracking, config) as tracked:
                opened = time.perf_counter() - start
                strategy = build_strategy("naive", bench, plugins=[AccuracyPlugin(), *tracked.plugins])
                strategy.train(first)
                tracked.row(row)
                first_calls, tracked.seconds = tracked.seconds, 0.0
                start, cpu, background = time.perf_counter(), time.process_time(), children_cpu_seconds()
                strategy.train(second)
                tracked.row(row)
                train, train_cpu = time.perf_counter() - start, time.process_time() - cpu
                background = children_cpu_seconds() - background
                start = time.perf_counter()
                tracked.finish(final)
            closed = time.perf_counter() - start  # finish and the writers' close
            return dict(zip(PARTS, (opened, first_calls, train, train_cpu, background, tracked.seconds, closed)))

        warmup, rounds = interleaved_rounds({t: lambda t=t: side(t) for t in (NONE, *measured)}, repeats)
    return TrackingCost(
        iterations=math.ceil(len(second) / strategy_setup(bench).batch_size),
        loss_every=loss_every,
        sides={t: {p: Timing([r[p] for r in runs]) for p in PARTS} for t, runs in rounds.items()},
        first_open={t: warmup[t][0]["open"] for t in measured},
        skipped=skipped,
    )
