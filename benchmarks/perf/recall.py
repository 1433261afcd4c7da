"""(c) Recall latency: 128 queries (d = 128) against a full memory of 100 ... 100,000 items.

Timed with the process's torch thread count and with every core; beside each, the cosine
matmul alone into reused storage (the floor under any exact recall).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

import benchmarks.perf.targets as targets
from benchmarks.perf.setups import BATCH, LATENT, random_memory
from benchmarks.perf.timing import Row, Timing, time_calls

CAPACITIES = (100, 1_000, 10_000, 100_000)
TARGET_CAPACITY = 100_000


@dataclass(frozen=True)
class RecallLatency:
    key: ClassVar[str] = "recall"

    queries: int
    d: int
    top_k: int
    calls: int
    threads: int  # the perf process's own thread count: the first number of each row
    by_threads: dict[int, dict[int, Timing]]  # threads -> capacity -> per-call time
    matmul_only_by_threads: dict[int, dict[int, Timing]]

    def rows(self) -> list[Row]:
        rows, previous = [], None
        own, others = self.by_threads[self.threads], [t for t in self.by_threads if t != self.threads]
        for capacity, timing in own.items():
            growth = "" if previous is None else f" ({timing.median / previous:.1f}x the previous)"
            extra = "".join(f"; {self.by_threads[t][capacity].median * 1000:.2f} ms with {t} threads" for t in others)
            floor = self.matmul_only_by_threads.get(self.threads, {}).get(capacity)
            if floor is not None:
                extra += f"; its cosine matmul alone, {self.threads} thread(s): {floor.median * 1000:.2f} ms"
            is_target = capacity == TARGET_CAPACITY
            best_ms = 1000 * min(by[capacity].median for by in self.by_threads.values())  # any thread count
            rows.append(
                Row(
                    f"(c) recall, {self.queries} queries, d = {self.d}, capacity {capacity:,}",
                    f"{timing.median * 1000:.2f} ms with {self.threads} thread(s){growth}{extra}",
                    f"≤ {targets.RECALL_100K_MS:.0f} ms (best thread count)" if is_target else "—",
                    best_ms <= targets.RECALL_100K_MS if is_target else None,
                )
            )
            previous = timing.median
        return rows

    def to_json(self) -> dict[str, Any]:
        def table(by: dict[int, dict[int, Timing]]) -> dict[str, dict[str, Any]]:
            return {str(t): {str(c): timing.to_json() for c, timing in row.items()} for t, row in by.items()}

        return {
            "queries": self.queries,
            "d": self.d,
            "top_k": self.top_k,
            "calls": self.calls,
            "threads": self.threads,
            "by_threads": table(self.by_threads),
            "matmul_only_by_threads": table(self.matmul_only_by_threads),
        }


def measure_recall(repeats: int, capacities=CAPACITIES, thread_counts=(None,), device: str = "cpu") -> RecallLatency:
    """``thread_counts``: torch thread counts to time with (None: the current one); the
    process's thread count is restored afterwards."""
    from epinet.config import EpiNetConfig
    from epinet.recall import RecallEngine

    config = EpiNetConfig()  # default top_k, alpha
    engine = RecallEngine(config.top_k)
    now = torch.tensor(1_000.0, dtype=torch.float64, device=device)
    queries = torch.randn(BATCH, LATENT, generator=torch.Generator().manual_seed(1)).to(device)
    calls = max(20, 4 * repeats)
    own_threads = torch.get_num_threads()
    by_threads: dict[int, dict[int, Timing]] = {}
    floors: dict[int, dict[int, Timing]] = {}
    try:
        for threads in thread_counts:
            threads = threads or own_threads
            torch.set_num_threads(threads)
            by_threads[threads], floors[threads] = {}, {}
            for capacity in capacities:
                by_threads[threads][capacity], floors[threads][capacity] = _time_recall(
                    engine, queries, now, config.alpha, capacity, calls, device
                )
                gc.collect()  # the memory just timed (up to ~350 MB) goes before the next is built
    finally:
        torch.set_num_threads(own_threads)
    own = own_threads if own_threads in by_threads else next(iter(by_threads))
    return RecallLatency(BATCH, LATENT, config.top_k, calls, own, by_threads, floors)


def _time_recall(
    engine, queries: torch.Tensor, now: torch.Tensor, alpha: float, capacity: int, calls: int, device="cpu"
) -> tuple[Timing, Timing]:
    """(recall, the cosine matmul alone into reused storage: the floor under any exact recall)."""
    memory = random_memory(capacity, device=device)

    def recall():
        with torch.no_grad():
            return engine.recall(queries, memory, now, alpha)

    keys, out = memory.c.T, torch.empty(len(queries), capacity, device=device)
    recall_timing = time_calls(recall, calls, device=device)
    return recall_timing, time_calls(lambda: torch.mm(queries, keys, out=out), calls, device=device)
