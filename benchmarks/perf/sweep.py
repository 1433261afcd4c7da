"""(e) Wall time and peak RSS of a full ``quick.yaml`` sweep with ``--jobs 2`` (a subprocess), and
that subprocess timing, which (f) reuses for the same sweep on Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import benchmarks.perf.targets as targets
from benchmarks.perf.timing import Row, mib

REPO_ROOT = Path(__file__).resolve().parents[2]
QUICK_CONFIG = REPO_ROOT / "benchmarks" / "configs" / "quick.yaml"


@dataclass(frozen=True)
class SweepRuns:
    """Per-run peak RSS, train and eval seconds, keyed ``strategy/benchmark/seedN``."""

    peak_rss_bytes: dict[str, int] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    eval_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return len(self.peak_rss_bytes)

    @property
    def peak_rss_bytes_max_run(self) -> int | None:
        return max(self.peak_rss_bytes.values()) if self.peak_rss_bytes else None


def sweep_runs(results: Path) -> SweepRuns:
    """What a results directory's run JSONs say about each run's cost."""
    runs = [json.loads(p.read_text()) for p in sorted(Path(results).glob("runs/**/*.json"))]

    def by_run(key):
        return {
            f"{r['config']['strategy']}/{r['config']['benchmark']}/seed{r['config']['seed']}": r["metrics"][key]
            for r in runs
        }

    return SweepRuns(by_run("peak_rss_bytes"), by_run("train_seconds"), by_run("eval_seconds"))


@dataclass(frozen=True)
class QuickSweep:
    key: ClassVar[str] = "quick"

    config: str
    jobs: int
    returncode: int
    wall_seconds: float
    peak_rss_bytes_process_tree: int  # the sweep process and its waited-for descendants
    runs: SweepRuns
    log_tail: str | None = None  # the sweep's output when it failed

    def rows(self) -> list[Row]:
        ok = self.returncode == 0 and self.wall_seconds <= targets.QUICK_SECONDS
        own = ""
        if self.runs.train_seconds:
            train, evals = sum(self.runs.train_seconds.values()), sum(self.runs.eval_seconds.values())
            own = f"; the runs' own training + evaluation: {train:.0f} + {evals:.0f} s over {self.jobs} workers"
        return [
            Row(
                f"(e) `epinet-bench sweep {self.config} --jobs {self.jobs}`: wall time ({self.runs.runs} runs)",
                f"{self.wall_seconds:.0f} s" + ("" if self.returncode == 0 else f" (exit {self.returncode})") + own,
                f"≤ {targets.QUICK_SECONDS:.0f} s",
                ok,
            ),
            Row(
                "(e) peak RSS: largest run / whole sweep process tree",
                f"{mib(self.runs.peak_rss_bytes_max_run)} / {mib(self.peak_rss_bytes_process_tree)}",
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["runs"] = {
            "count": self.runs.runs,
            "peak_rss_bytes_max_run": self.runs.peak_rss_bytes_max_run,
            **asdict(self.runs),
        }
        return out


def timed_sweep(data_root: str | None, config: Path, args: list[str]) -> tuple[int, float, int, SweepRuns, str | None]:
    """Run ``epinet-bench sweep <config> <args>`` in a subprocess, into a scratch directory:
    (exit code, wall seconds, peak RSS of its process tree, its runs, its output if it failed)."""
    with tempfile.TemporaryDirectory(prefix="epinet-perf-") as scratch:
        results = Path(scratch) / "results"
        cmd = [sys.executable, "-m", "benchmarks.cli", "sweep", str(config), *args, "--results", str(results), "-q"]
        if data_root:
            cmd += ["--data-root", str(data_root)]
        log_path = Path(scratch) / "sweep.log"
        with open(log_path, "wb") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
        returncode = proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
        tail = None if returncode == 0 else log_path.read_text(errors="replace")[-4000:]
        return returncode, wall, usage.ru_maxrss * 1024, sweep_runs(results), tail


def measure_quick(data_root: str | None, config: Path = QUICK_CONFIG, jobs: int = 2, device: str = "cpu") -> QuickSweep:
    """``epinet-bench sweep <config> --jobs N`` (the local pool) in a subprocess."""
    returncode, wall, rss, runs, tail = timed_sweep(data_root, config, ["--jobs", str(jobs), "--device", device])
    return QuickSweep(
        config=config.name,
        jobs=jobs,
        returncode=returncode,
        wall_seconds=wall,
        peak_rss_bytes_process_tree=rss,
        runs=runs,
        log_tail=tail,
    )
