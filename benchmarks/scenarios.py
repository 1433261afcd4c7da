"""The registry of benchmarks: one list of names, used by config validation, the CLI help,
report order and ``streams.build_benchmark``.

Torch-free on purpose: validating a config (and answering bad input) must not pay for
importing torch. Each entry names its builder in ``benchmarks.streams``, imported on use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.data import N_CLASSES


@dataclass(frozen=True)
class Scenario:
    name: str
    builder: str  # a function of benchmarks.streams: builder(data, *, seed, n_experiences, ...)
    default_experiences: int
    summary: str
    builder_options: dict[str, Any] = field(default_factory=dict)
    splits_classes: bool = False  # experiences partition the 10 classes: their number must divide 10

    def experiences(self, n_experiences: int | None) -> int:
        return n_experiences or self.default_experiences

    def check_experiences(self, n_experiences: int | None) -> None:
        n = self.experiences(n_experiences)
        if self.splits_classes and N_CLASSES % n:
            raise ValueError(
                f"{self.name} splits {N_CLASSES} classes: "
                f"n_experiences must divide {N_CLASSES} (got {n}); use 1, 2, 5 or 10"
            )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("split-mnist", "split_mnist", 5, "class-incremental, 5 x 2 classes, one head", splits_classes=True),
        Scenario(
            "split-mnist-task",
            "split_mnist",
            5,
            "task-incremental, task label given, logits masked to the task",
            {"task_labels": True},
            splits_classes=True,
        ),
        Scenario(
            "permuted-mnist", "permuted_mnist", 10, "domain-incremental, a seeded pixel permutation per experience"
        ),
    )
}
BENCHMARKS = tuple(SCENARIOS)  # in report order


class UnknownBenchmark(ValueError):
    pass


def get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise UnknownBenchmark(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return SCENARIOS[name]
