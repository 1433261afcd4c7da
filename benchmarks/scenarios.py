"""The registry of benchmarks: one list of names, used by config validation, the CLI help,
report order and ``streams.build_benchmark``.

Torch-free on purpose: validating a config (and answering bad input) must not pay for
importing torch. Each entry names its builder, a function of ``benchmarks.streams`` (or
``module:function`` for another module of ``benchmarks``), imported on use.

A ``task_free`` scenario gives the strategy no experience boundary: its training stream is
delivered as mini-experiences (``benchmarks.online``), whatever the run's ``online`` setting,
and strategies that need boundaries are refused (``baselines.registry``). Its accuracy matrix
is still evaluated at the original boundaries.
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
    task_free: bool = False  # no experience boundary reaches the strategy (see the module's note)
    default_blur: float | None = None  # blurry scenarios: share of each experience from the others' classes

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
        Scenario(
            "rotated-mnist",
            "rotation:rotated_mnist",
            10,
            "domain-incremental, a rotation per experience, angles k*180/N in a seeded order",
        ),
        Scenario(
            "split-mnist-blurry",
            "blurry:blurry_split_mnist",
            5,
            "task-free class-incremental, 5 x 2 classes with blurred boundaries (Blurry10), no boundary given",
            splits_classes=True,
            task_free=True,
            default_blur=0.1,
        ),
    )
}
BENCHMARKS = tuple(SCENARIOS)  # in report order


# How reports name a benchmark run under the online protocol (a stream of its own): split-mnist-online.
ONLINE_SUFFIX = "-online"


def stream_label(benchmark: str, online: bool | None) -> str:
    """The name a report gives the stream a run trained on: the benchmark, suffixed when online."""
    return benchmark + ONLINE_SUFFIX if online else benchmark


class UnknownBenchmark(ValueError):
    pass


def get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise UnknownBenchmark(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return SCENARIOS[name]
