"""The registry of benchmarks: one list of names, used by config validation, the CLI help,
report order and ``streams.build_benchmark``.

Torch-free on purpose: validating a config (and answering bad input) must not pay for
importing torch. Each entry names its builder in ``benchmarks.streams``, imported on use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scenario:
    name: str
    builder: str  # a function of benchmarks.streams: builder(data, *, seed, n_experiences, ...)
    default_experiences: int
    summary: str
    builder_options: dict[str, Any] = field(default_factory=dict)

    def experiences(self, n_experiences: int | None) -> int:
        return n_experiences or self.default_experiences


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("split-mnist", "split_mnist", 5, "class-incremental, 5 x 2 classes, one head"),
        Scenario("split-mnist-task", "split_mnist", 5, "task-incremental, task label given, logits masked to the task", {"task_labels": True}),
        Scenario("permuted-mnist", "permuted_mnist", 10, "domain-incremental, a seeded pixel permutation per experience"),
    )
}
BENCHMARKS = tuple(SCENARIOS)  # in report order


class UnknownBenchmark(ValueError):
    pass


def get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise UnknownBenchmark(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return SCENARIOS[name]
