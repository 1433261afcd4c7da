"""(h) The online protocol at batch 10: Naive through the harness vs a plain PyTorch loop.

The harness side is what ``epinet-bench run --online`` does with one experience: Split-MNIST's
first training experience (a prefix of ``SAMPLES`` samples) cut into mini-experiences of 10
(``benchmarks.online.MiniStream``), each given to the registry's ``naive`` strategy by its own
``train`` call; cutting and building the mini-experiences is timed too. The plain side trains
the same architecture with the same optimiser on the same tensors, 10 samples a step, in a
bare loop. Both report seconds per sample; at this batch size the harness's per-iteration
overhead (Avalanche's ``train`` call, callbacks, the mini-experience) is what the ratio shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import benchmarks.perf.targets as targets
from benchmarks.perf.harness import plain_epoch
from benchmarks.perf.setups import build_strategy, strategy_setup
from benchmarks.perf.timing import Row, Timing, interleaved

BATCH = 10
SAMPLES = 3000


@dataclass(frozen=True)
class OnlineVsPlain:
    key: ClassVar[str] = "online"

    samples: int
    batch_size: int
    optimizer: str
    harness: Timing  # seconds for all samples
    plain: Timing

    @property
    def ratio(self) -> float:
        return self.harness.median / self.plain.median

    def _us(self, timing: Timing) -> str:
        return f"{1e6 * timing.median / self.samples:.0f} µs"

    def rows(self) -> list[Row]:
        return [
            Row(
                f"(h) online protocol, Naive at batch {self.batch_size} ({self.samples:,} samples, one `train` call per"
                " mini-experience): harness / plain PyTorch loop, time per sample",
                f"{self._us(self.harness)} / {self._us(self.plain)} = {self.ratio:.2f}x",
                f"≤ {targets.ONLINE_RATIO:.2f}x",
                self.ratio <= targets.ONLINE_RATIO,
            )
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "what": f"Naive, online protocol, the first {self.samples} samples of Split-MNIST train experience 0",
            "samples": self.samples,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "seconds": {"harness": self.harness.to_json(), "plain": self.plain.to_json()},
            "seconds_per_sample": {
                "harness": self.harness.median / self.samples,
                "plain": self.plain.median / self.samples,
            },
            "ratio_harness_plain": self.ratio,
        }


def measure_online(bench, repeats: int, samples: int = SAMPLES) -> OnlineVsPlain:
    import time

    from benchmarks.online import MiniStream, train_online

    tensors = tuple(t[:samples] for t in bench.train_stream[0].tensors)
    setup = strategy_setup(bench, batch_size=BATCH, boundaries=False)

    def harness() -> float:
        strategy = build_strategy("naive", bench, batch_size=BATCH, boundaries=False)
        start = time.perf_counter()
        for _ in train_online(strategy, MiniStream([tensors], BATCH, across_boundaries=False)):
            pass
        return time.perf_counter() - start

    timings = interleaved({"harness": harness, "plain": lambda: plain_epoch(setup, tensors)}, repeats)
    return OnlineVsPlain(samples=len(tensors[1]), batch_size=BATCH, optimizer=setup.optimizer, **timings)
