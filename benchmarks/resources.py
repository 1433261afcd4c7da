"""Refuse, before allocating, a configuration whose memory would not fit on this machine.

A strategy that keeps a memory declares ``planned_bytes(options, memory, input_shape)`` in its
registration; a run may plan at most ``MEMORY_SHARE`` of the RAM available when it is checked
(divided among the runs of a sweep that go on at once). The rest stays for the data, the
model and Avalanche. A typo such as ``--memory 1000000000`` is answered in one line instead of
an allocator traceback or tens of GB zero-filled.
"""

from __future__ import annotations

import psutil

from baselines.registry import get_strategy
from benchmarks.config import ConfigError, RunConfig
from benchmarks.units import human_bytes

MEMORY_SHARE = 0.5
INPUT_SHAPE = (1, 28, 28)  # every benchmark here is MNIST-sized


def planned_bytes(config: RunConfig) -> int:
    spec = get_strategy(config.strategy)
    if spec.planned_bytes is None:
        return 0
    options = spec.validate_options(config.strategy_options, config.memory)
    return int(spec.planned_bytes(options, config.memory, INPUT_SHAPE))


def check_memory_fits(configs: list[RunConfig], concurrent: int = 1, available: int | None = None) -> None:
    """ConfigError naming the first configuration whose planned memory exceeds its share."""
    available = psutil.virtual_memory().available if available is None else available
    limit = available * MEMORY_SHARE / max(1, concurrent)
    for config in configs:
        need = planned_bytes(config)
        if need > limit:
            runs = f" per run with {concurrent} runs at once" if concurrent > 1 else ""
            raise ConfigError(
                f"memory {config.memory} for {config.strategy} would allocate {human_bytes(need)}; "
                f"this machine allows {human_bytes(limit)}{runs} "
                f"({MEMORY_SHARE:.0%} of the {human_bytes(available)} available): lower --memory"
            )
