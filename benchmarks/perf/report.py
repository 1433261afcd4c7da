"""A perf report: the measurements taken, where and how; its table, Markdown and JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import benchmarks.perf.targets as targets
from benchmarks.perf.timing import Row


class Measurement(Protocol):
    """What each of (a) ... (e) is: it knows its key in perf.json and renders its own rows."""

    key: ClassVar[str]

    def rows(self) -> list[Row]: ...

    def to_json(self) -> dict[str, Any]: ...


PAPER_ROW = Row(
    "paper.yaml with --jobs 2 (not run by `perf`; time `make paper`)",
    "not measured",
    f"≤ {targets.PAPER_SECONDS / 60:.0f} min",
)


@dataclass
class PerfReport:
    created: str  # ISO 8601, UTC
    machine: dict[str, Any]  # benchmarks.provenance.machine()
    versions: dict[str, str]  # benchmarks.provenance.package_versions()
    code: dict[str, Any]  # benchmarks.provenance.code_version()
    repeats: int
    threads: int  # torch threads in the timing process
    data_root: str = ""
    load_before: list[float] | None = None
    load_after: list[float] | None = None
    device: dict[str, Any] | None = None  # benchmarks.provenance.device_info(): where (a) to (g) trained
    measurements: list[Measurement] = field(default_factory=list)

    def rows(self) -> list[Row]:
        return [row for m in self.measurements for row in m.rows()] + [PAPER_ROW]

    def markdown(self) -> str:
        mc, v = self.machine, self.versions
        on = "" if not self.device or self.device["type"] == "cpu" else f", training on {self.device['name']}"
        lines = [
            f"Measured {self.created} on {mc['cpu']} ({mc['cores']} cores){on}, {mc['platform']}, "
            f"Python {v['python']}, torch {v['torch']}, Avalanche {v['avalanche-lib']}; "
            f"{self.threads} torch thread(s) per process, medians of {self.repeats} interleaved repeats; "
            f"load average before/after: {_load(self.load_before)} / {_load(self.load_after)}.",
            "",
            "| measurement | result | target | verdict |",
            "|---|---|---|---|",
        ]
        lines += [f"| {r.measurement} | {r.result} | {r.target} | {r.verdict} |" for r in self.rows()]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "machine": self.machine,
            "device": self.device,
            "versions": self.versions,
            "code": self.code,
            "settings": {
                "repeats": self.repeats,
                "threads": self.threads,
                "data_root": self.data_root,
                "targets": targets.ALL,
            },
            "load_before": self.load_before,
            "load_after": self.load_after,
            "measurements": {m.key: m.to_json() for m in self.measurements},
            "table": [r.to_json() for r in self.rows()],
        }


def _load(load: list[float] | None) -> str:
    return "n/a" if not load else " ".join(f"{v:.2f}" for v in load)
