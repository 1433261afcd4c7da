"""(f) Ray's overhead against the local pool: the same ``quick.yaml`` sweep as (e), with
``--backend ray --jobs 2`` (a local Ray started for the sweep and stopped after it, two runs at a
time, as (e)'s two workers), in a subprocess.

Two figures: the wall-time ratio Ray / local pool (the target), and, for each backend, the
seconds per run not spent training or evaluating (wall x jobs - the runs' own train and eval
seconds, over the runs): process start, imports, data loading and, for Ray, its start-up,
scheduling and the driver's writes. The second moves less with the machine's load, since
each run's own work is subtracted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import benchmarks.perf.targets as targets
from benchmarks.perf.sweep import QUICK_CONFIG, QuickSweep, SweepRuns, timed_sweep
from benchmarks.perf.timing import Row


def overhead_per_run(wall: float, jobs: int, runs: SweepRuns) -> float | None:
    """Seconds per run of the sweep's worker time not spent in the runs' own training and evaluation."""
    if not runs.runs:
        return None
    own = sum(runs.train_seconds.values()) + sum(runs.eval_seconds.values())
    return (wall * jobs - own) / runs.runs


@dataclass(frozen=True)
class RayOverhead:
    key: ClassVar[str] = "ray_overhead"

    config: str
    jobs: int
    local_wall_seconds: float
    ray_wall_seconds: float
    ray_returncode: int
    local_runs: SweepRuns
    ray_runs: SweepRuns
    log_tail: str | None = None  # the Ray sweep's output when it failed

    @property
    def ratio(self) -> float:
        return self.ray_wall_seconds / self.local_wall_seconds

    def rows(self) -> list[Row]:
        ok = self.ray_returncode == 0 and self.ratio <= targets.RAY_OVERHEAD_RATIO
        local = overhead_per_run(self.local_wall_seconds, self.jobs, self.local_runs)
        ray = overhead_per_run(self.ray_wall_seconds, self.jobs, self.ray_runs)
        exit_note = "" if self.ray_returncode == 0 else f" (exit {self.ray_returncode})"
        rows = [
            Row(
                f"(f) `sweep {self.config} --backend ray --jobs {self.jobs}` / (e)'s local pool: wall time"
                f" ({self.ray_runs.runs} runs)",
                f"{self.ray_wall_seconds:.0f} s / {self.local_wall_seconds:.0f} s = {self.ratio:.2f}x{exit_note}",
                f"≤ {targets.RAY_OVERHEAD_RATIO:.2f}x",
                ok,
            )
        ]
        if local is not None and ray is not None:
            rows.append(
                Row(
                    "(f) per run, worker time outside its own training and evaluation: Ray / local pool",
                    f"{ray:.1f} s / {local:.1f} s ({ray - local:+.1f} s per run)",
                )
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = self.ratio
        out["overhead_seconds_per_run"] = {
            "ray": overhead_per_run(self.ray_wall_seconds, self.jobs, self.ray_runs),
            "local": overhead_per_run(self.local_wall_seconds, self.jobs, self.local_runs),
        }
        return out


def measure_ray_overhead(
    local: QuickSweep, data_root: str | None, config: Path = QUICK_CONFIG, device: str = "cpu"
) -> RayOverhead:
    """The sweep (e) timed on the local pool, now on an embedded Ray with as many runs at a time."""
    # On a GPU, the two runs share it as (e)'s two workers do; Ray must be told, or it reserves none.
    gpus = ["--device", "cpu"] if device == "cpu" else ["--gpus-per-run", f"{1 / local.jobs:g}"]
    args = ["--backend", "ray", "--jobs", str(local.jobs), *gpus]
    returncode, wall, _, runs, tail = timed_sweep(data_root, config, args)
    return RayOverhead(
        config=config.name,
        jobs=local.jobs,
        local_wall_seconds=local.wall_seconds,
        ray_wall_seconds=wall,
        ray_returncode=returncode,
        local_runs=local.runs,
        ray_runs=runs,
        log_tail=tail,
    )
