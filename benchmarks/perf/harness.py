"""(a) One epoch of Naive through the harness vs a plain PyTorch loop.

The registry's ``naive`` strategy on ``StrategySetup``, built as the runner builds it and
timed from ``strategy.train(exp)`` start to end, against a bare loop on the same model
architecture, tensors, batch size and optimiser; Avalanche's stock per-sample data path
(``fast_data=False``) is timed alongside, for reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

import benchmarks.perf.targets as targets
from benchmarks.perf.setups import build_strategy, strategy_setup, timed_train
from benchmarks.perf.timing import Row, Timing, clock, interleaved, ms


@dataclass(frozen=True)
class HarnessVsPlain:
    key: ClassVar[str] = "harness"

    samples: int
    iterations: int
    batch_size: int
    optimizer: str
    harness: Timing
    plain: Timing
    stock_avalanche: Timing

    @property
    def ratio_harness_plain(self) -> float:
        return self.harness.median / self.plain.median

    @property
    def ratio_stock_plain(self) -> float:
        return self.stock_avalanche.median / self.plain.median

    def rows(self) -> list[Row]:
        return [
            Row(
                f"(a) Naive, one epoch ({self.samples:,} samples, batch {self.batch_size}):"
                " harness / plain PyTorch loop",
                f"{ms(self.harness.median)} / {ms(self.plain.median)} = {self.ratio_harness_plain:.2f}x",
                f"≤ {targets.HARNESS_RATIO:.2f}x",
                self.ratio_harness_plain <= targets.HARNESS_RATIO,
            ),
            Row(
                "(a) for reference: Avalanche's stock per-sample data path / plain loop",
                f"{ms(self.stock_avalanche.median)} / {ms(self.plain.median)} = {self.ratio_stock_plain:.2f}x",
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "what": "Naive, one epoch over Split-MNIST train experience 0",
            "samples": self.samples,
            "iterations": self.iterations,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "seconds": {name: getattr(self, name).to_json() for name in ("harness", "plain", "stock_avalanche")},
            "ratio_harness_plain": self.ratio_harness_plain,
            "ratio_stock_plain": self.ratio_stock_plain,
        }


def plain_epoch(setup, tensors, seed: int = 0) -> float:
    """One epoch of the same model, optimiser, tensors and batch size in a bare PyTorch loop,
    on the setup's device; each minibatch moves there as the harness moves it."""
    torch.manual_seed(seed)
    model = setup.classifier().to(setup.device)
    optimizer = setup.make_optimizer(model)
    criterion = nn.CrossEntropyLoss()
    x, y = tensors[0], tensors[1]
    now = clock(setup.device)
    start = now()
    model.train()
    order = torch.randperm(len(y))
    for i in range(0, len(y), setup.batch_size):
        idx = order[i : i + setup.batch_size]
        optimizer.zero_grad()
        loss = criterion(model(x[idx].to(setup.device)), y[idx].to(setup.device))
        loss.backward()
        optimizer.step()
    return now() - start


def measure_harness(bench, repeats: int, device: str = "cpu") -> HarnessVsPlain:
    experience = bench.train_stream[0]
    setup = strategy_setup(bench, device=device)

    def harness(fast: bool) -> float:
        return timed_train(build_strategy("naive", bench, fast_data=fast, device=device), experience)

    timings = interleaved(
        {
            "harness": lambda: harness(True),
            "plain": lambda: plain_epoch(setup, experience.tensors),
            "stock_avalanche": lambda: harness(False),
        },
        repeats,
    )
    n = len(experience)
    return HarnessVsPlain(
        samples=n,
        iterations=math.ceil(n / setup.batch_size),
        batch_size=setup.batch_size,
        optimizer=setup.optimizer,
        **timings,
    )
