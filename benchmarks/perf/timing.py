"""Timing samples, interleaved comparisons, and the table row every measurement renders."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Seconds of repeated runs of one thing; the median is what tables report."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": min(self.samples), "max": max(self.samples), "samples": self.samples}


def interleaved_rounds(
    sides: dict[str, Callable[[], T]], repeats: int, warmup: int = 1
) -> tuple[dict[str, list[T]], dict[str, list[T]]]:
    """Run each side's function in turn (A, B, A, B, ...), ``warmup`` + ``repeats`` rounds; what
    each returned, per side, in the warm-up rounds and in the timed ones.

    The warm-up rounds come first (lazy imports, allocator and kernel warm-up); the
    interleaving spreads any change in machine load over all sides alike."""
    warm: dict[str, list[T]] = {name: [] for name in sides}
    timed: dict[str, list[T]] = {name: [] for name in sides}
    for round_ in range(warmup + repeats):
        for name, fn in sides.items():
            gc.collect()
            (timed if round_ >= warmup else warm)[name].append(fn())
    return warm, timed


def interleaved(sides: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, Timing]:
    """``interleaved_rounds`` of functions that return seconds: the timed rounds' ``Timing`` per side."""
    _, timed = interleaved_rounds(sides, repeats, warmup)
    return {name: Timing(samples) for name, samples in timed.items()}


def clock(device="cpu") -> Callable[[], float]:
    """``time.perf_counter`` once ``device``'s queued work is done: on a GPU, a time read right
    after a call would measure the launch of its kernels, not their work."""
    from benchmarks.devices import synchronize

    def now() -> float:
        synchronize(device)
        return time.perf_counter()

    return now


def time_calls(fn: Callable[[], Any], calls: int, warmup: int = 3, device="cpu") -> Timing:
    """Per-call seconds of ``calls`` calls after ``warmup`` untimed ones, on ``device``."""
    now = clock(device)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        start = now()
        fn()
        samples.append(now() - start)
    return Timing(samples)


@dataclass(frozen=True)
class Row:
    """One line of the perf table. ``passed`` is None where there is no target."""

    measurement: str
    result: str
    target: str = "—"
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        return "—" if self.passed is None else ("pass" if self.passed else "**FAIL**")

    def to_json(self) -> dict[str, str]:
        return {"measurement": self.measurement, "result": self.result, "target": self.target, "verdict": self.verdict}


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def mib(n: int | None) -> str:
    return "—" if n is None else f"{n / 2**20:.0f} MiB"
