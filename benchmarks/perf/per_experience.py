"""(b) EpiNet vs reservoir replay: training time of one experience through the harness.

Same memory budget (500), backbone (mlp) and batch size (128): the training time of
Split-MNIST's second experience, the memory already filled by the first (untimed). The
target is judged on EpiNet's default options; paper.yaml's EpiNet options, if any, are
timed alongside for information.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import benchmarks.perf.targets as targets
from benchmarks.perf.setups import build_strategy, strategy_setup, timed_train
from benchmarks.perf.timing import Row, Timing, interleaved, ms

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class EpiNetVsReplay:
    key: ClassVar[str] = "epinet_vs_replay"

    memory: int
    backbone: str
    batch_size: int
    iterations: int
    epinet: Timing
    replay: Timing
    epinet_paper: Timing | None = None  # EpiNet with paper.yaml's options
    epinet_paper_options: dict[str, Any] | None = None

    @property
    def ratio_epinet_replay(self) -> float:
        return self.epinet.median / self.replay.median

    @property
    def epinet_ms_per_iteration(self) -> float:
        return 1000 * self.epinet.median / self.iterations

    def rows(self) -> list[Row]:
        rows = [
            Row(
                "(b) training time per experience, EpiNet / reservoir replay"
                f" (memory {self.memory}, {self.backbone}, batch {self.batch_size})",
                f"{ms(self.epinet.median)} / {ms(self.replay.median)} = {self.ratio_epinet_replay:.2f}x",
                f"≤ {targets.EPINET_REPLAY_RATIO:.2f}x",
                self.ratio_epinet_replay <= targets.EPINET_REPLAY_RATIO,
            )
        ]
        if self.epinet_paper is not None:
            options = ", ".join(f"{k}={v}" for k, v in (self.epinet_paper_options or {}).items())
            ratio = self.epinet_paper.median / self.replay.median
            rows.append(
                Row(
                    f"(b) same, EpiNet with paper.yaml's options ({options}) / replay",
                    f"{ms(self.epinet_paper.median)} / {ms(self.replay.median)} = {ratio:.2f}x",
                )
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        timings = {"epinet": self.epinet, "replay": self.replay, "epinet_paper": self.epinet_paper}
        timings = {name: t for name, t in timings.items() if t is not None}
        return {
            "what": "training time of Split-MNIST experience 1 after experience 0",
            "memory": self.memory,
            "backbone": self.backbone,
            "batch_size": self.batch_size,
            "iterations": self.iterations,
            "seconds": {name: t.to_json() for name, t in timings.items()},
            "ms_per_iteration": {name: 1000 * t.median / self.iterations for name, t in timings.items()},
            "ratio_epinet_replay": self.ratio_epinet_replay,
            "epinet_paper_options": self.epinet_paper_options,
        }


def paper_epinet_options() -> dict[str, Any] | None:
    """EpiNet's options in paper.yaml (the settings the reference results use), if any."""
    from benchmarks.config import load_sweep

    try:
        options = load_sweep(CONFIGS / "paper.yaml").strategy_options.get("epinet")
    except (OSError, ValueError):  # no paper.yaml, or one that does not validate: nothing to add
        return None
    return dict(options) if options else None


def measure_epinet_vs_replay(bench, repeats: int, device: str = "cpu") -> EpiNetVsReplay:
    first, second = bench.train_stream[0], bench.train_stream[1]

    def second_experience(name: str, options: dict | None = None) -> float:
        strategy = build_strategy(name, bench, options=options, device=device)
        strategy.train(first)  # fills the memory / buffer (untimed)
        return timed_train(strategy, second)

    sides = {"epinet": lambda: second_experience("epinet"), "replay": lambda: second_experience("replay")}
    paper = paper_epinet_options()
    if paper:
        sides["epinet_paper"] = lambda: second_experience("epinet", paper)
    timings = interleaved(sides, repeats)
    setup = strategy_setup(bench)
    return EpiNetVsReplay(
        memory=setup.memory,
        backbone=setup.backbone,
        batch_size=setup.batch_size,
        iterations=math.ceil(len(second) / setup.batch_size),
        epinet_paper_options=paper,
        **timings,
    )
