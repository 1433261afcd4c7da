"""(c) Recall latency: 128 queries (d = 128) against a full memory of 100 ... 100,000 items.

Timed with the process's torch thread count and with every core; beside each, the cosine
matmul alone into reused storage (the floor under any exact recall). Then the same at
100,000 with ``recall_index="faiss-ivf"``: search time with the index built, its recall@k
against exact search, its build time and the re-filing after an admission.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

import benchmarks.perf.targets as targets
from benchmarks.perf.setups import BATCH, LATENT, encoded_memory, random_memory
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


@dataclass(frozen=True)
class IndexedMemory:
    """faiss-ivf on one memory: query time per thread count (the index built beforehand), exact
    search on the same memory beside it, recall@k against exact, and the index's build."""

    what: str
    target: bool  # whether the targets judge this memory (real latents) or it is a reference
    by_threads: dict[int, Timing]
    exact_by_threads: dict[int, Timing]
    recall_at_k: float
    build_seconds: float
    refile: Timing  # re-filing the slots that one admitted batch rewrote
    lists: int
    probed: int
    head: int


@dataclass(frozen=True)
class IndexedRecall:
    key: ClassVar[str] = "recall_index"

    index: str
    queries: int
    d: int
    top_k: int
    capacity: int
    calls: int
    threads: int  # the perf process's own thread count (builds ran with it)
    memories: list[IndexedMemory]
    missing: str | None = None  # why nothing was measured (faiss not installed)

    def rows(self) -> list[Row]:
        label = f"(c) recall with recall_index={self.index}, {self.queries} queries, d = {self.d}"
        if self.missing:
            return [Row(label, f"not measured: {self.missing}")]
        rows = []
        for m in self.memories:
            own = m.by_threads[self.threads]
            others = "".join(
                f"; {timing.median * 1000:.2f} ms with {n} threads"
                for n, timing in m.by_threads.items()
                if n != self.threads
            )
            exact = "; ".join(f"{t.median * 1000:.2f} ms with {n}" for n, t in m.exact_by_threads.items())
            best_ms = 1000 * min(t.median for t in m.by_threads.values())
            what = f"{label}, {self.capacity:,} {m.what}"
            if not m.target:
                what = what.replace("(c) ", "(c) for reference: ", 1)
            rows.append(
                Row(
                    f"{what}: search, index built",
                    f"{own.median * 1000:.2f} ms with {self.threads} thread(s){others} (exact search of the same"
                    f" memory: {exact} thread(s)); built in {m.build_seconds:.2f} s ({m.lists} lists, {m.probed}"
                    f" probed, {m.head} in the exact head); re-filing after one admitted batch:"
                    f" {m.refile.median * 1000:.2f} ms",
                    f"≤ {targets.RECALL_INDEX_100K_MS:.0f} ms (best thread count)" if m.target else "—",
                    best_ms <= targets.RECALL_INDEX_100K_MS if m.target else None,
                )
            )
            rows.append(
                Row(
                    f"{what}: recall@{self.top_k} against exact search",
                    f"{m.recall_at_k:.3f}",
                    f"≥ {targets.RECALL_INDEX_MIN_RECALL:.2f}" if m.target else "—",
                    m.recall_at_k >= targets.RECALL_INDEX_MIN_RECALL if m.target else None,
                )
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        def memory(m: IndexedMemory) -> dict[str, Any]:
            return {
                "what": m.what,
                "target": m.target,
                "by_threads": {str(t): timing.to_json() for t, timing in m.by_threads.items()},
                "exact_by_threads": {str(t): timing.to_json() for t, timing in m.exact_by_threads.items()},
                "recall_at_k": m.recall_at_k,
                "build_seconds": m.build_seconds,
                "refile": m.refile.to_json(),
                "lists": m.lists,
                "probed": m.probed,
                "head": m.head,
            }

        return {
            "index": self.index,
            "queries": self.queries,
            "d": self.d,
            "top_k": self.top_k,
            "capacity": self.capacity,
            "calls": self.calls,
            "threads": self.threads,
            "memories": [memory(m) for m in self.memories],
            "missing": self.missing,
        }


def measure_recall_index(bench, repeats: int, thread_counts=(None,), capacity: int = TARGET_CAPACITY) -> IndexedRecall:
    """faiss-ivf against exact search at ``capacity`` memories: on EpiNet's latents of MNIST
    images (r0 ~ U(0, 1) and r0 = 1, both decayed: what the targets judge) and, for reference,
    on ``random_memory``'s isotropic Gaussian latents, where no index can do much."""
    from epinet.config import EpiNetConfig
    from epinet.recall import RecallEngine
    from epinet.recall_index import ExactIndex

    config = EpiNetConfig()
    calls = max(20, 4 * repeats)
    own_threads = torch.get_num_threads()
    try:
        engine = RecallEngine(config.top_k, "faiss-ivf")
    except ValueError as missing:  # faiss is an optional extra
        return IndexedRecall("faiss-ivf", BATCH, LATENT, config.top_k, capacity, calls, own_threads, [], str(missing))
    now = torch.tensor(1_000.0, dtype=torch.float64)
    setups = [
        ("EpiNet latents of MNIST images, r0 ~ U(0, 1), decayed", True, lambda: encoded_memory(bench, capacity)),
        (
            "EpiNet latents of MNIST images, r0 = 1, decayed",
            True,
            lambda: encoded_memory(bench, capacity, uniform=True),
        ),
        (
            "isotropic Gaussian latents (random_memory), r0 ~ U(0, 2), decayed",
            False,
            lambda: (random_memory(capacity), torch.randn(BATCH, LATENT, generator=torch.Generator().manual_seed(1))),
        ),
    ]
    memories = []
    try:
        for what, target, build in setups:
            memory, queries = build()
            engine = RecallEngine(config.top_k, "faiss-ivf")
            with torch.no_grad():
                found = engine.index.top(queries, memory, now, config.alpha, config.top_k)[0]  # builds the index
                exact = ExactIndex().top(queries, memory, now, config.alpha, config.top_k)[0]
            overlap = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), exact.tolist())) / exact.numel()
            index = engine.index
            by_threads, exact_by_threads = _time_by_threads(
                engine, queries, memory, now, config.alpha, calls, thread_counts
            )
            memories.append(
                IndexedMemory(
                    what,
                    target,
                    by_threads,
                    exact_by_threads,
                    overlap,
                    index.build_seconds,
                    _time_refile(index, memory, config.alpha, calls),
                    *index.layout,
                )
            )
            del memory, engine
            gc.collect()
    finally:
        torch.set_num_threads(own_threads)
    return IndexedRecall("faiss-ivf", BATCH, LATENT, config.top_k, capacity, calls, own_threads, memories)


def _time_by_threads(engine, queries, memory, now, alpha, calls, thread_counts):
    """(index, exact) per-call times by thread count, the two sides' calls alternating so that
    a change in machine load weighs on both alike."""
    from epinet.recall import RecallEngine

    sides = {"index": engine, "exact": RecallEngine(engine.top_k)}
    own_threads = torch.get_num_threads()
    by_threads, exact_by_threads = {}, {}
    for threads in thread_counts:
        threads = threads or own_threads
        torch.set_num_threads(threads)  # faiss follows torch's count
        samples: dict[str, list[float]] = {name: [] for name in sides}
        with torch.no_grad():
            for round_ in range(3 + calls):  # 3 untimed warm-up rounds, as time_calls has
                for name, side in sides.items():
                    start = time.perf_counter()
                    side.recall(queries, memory, now, alpha)
                    if round_ >= 3:
                        samples[name].append(time.perf_counter() - start)
        by_threads[threads], exact_by_threads[threads] = Timing(samples["index"]), Timing(samples["exact"])
    torch.set_num_threads(own_threads)
    return by_threads, exact_by_threads


def _time_refile(index, memory, alpha: float, calls: int) -> Timing:
    """Seconds to bring the index in step after one batch of BATCH newcomers was admitted
    (the admission itself untimed): what training with the index adds to each step."""
    g = torch.Generator().manual_seed(2)
    samples = []
    for _ in range(calls):
        # Newcomers like the stored memories (their latents, r0 ~ U(0, 1)): most replace one.
        z = memory.z[torch.randint(len(memory), (BATCH,), generator=g)]
        r0, y = torch.rand(BATCH, generator=g), torch.zeros(BATCH, dtype=torch.long)
        memory.admit(torch.zeros(BATCH, *memory.input_shape), z, r0, y, 0, 1_000.0, alpha)
        start = time.perf_counter()
        index.sync(memory, alpha)
        samples.append(time.perf_counter() - start)
    return Timing(samples)
