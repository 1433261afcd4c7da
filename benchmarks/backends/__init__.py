"""``epinet-bench sweep --backend local|ray|slurm``: where a sweep's runs execute.

* ``local`` (default): ``sweep.LocalPool``, ``--jobs`` worker processes on this machine;
* ``ray``: one Ray task per run (``ray_pool.RayPool``), on an embedded local Ray or a running
  cluster (``--ray-address``); the sweep writes each returned result;
* ``slurm``: one Slurm job array over the grid through submitit (``slurm_array.SlurmArray``);
  each array task writes its result into the shared results directory.

Each backend-specific flag is declared once, in ``FLAGS``, with the backends it applies to:
the parser is built from it, and a flag given with another backend is an error rather than
silently ignored. This module stays light (no torch, no ray): the CLI checks the flags and the
optional packages with it before any data is read.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import devices
from benchmarks.extras import require

BACKENDS = ("local", "ray", "slurm")
PACKAGES = {"ray": ("ray", "ray"), "slurm": ("submitit", "slurm")}  # backend -> (module, extra)
SLURM_CLUSTERS = ("slurm", "local")  # local: submitit's LocalExecutor, every array task at once on this machine


@dataclass(frozen=True)
class Flag:
    name: str
    backends: tuple[str, ...]
    default: Any
    help: str
    parse: Any = str  # argparse ``type``
    extra: dict[str, Any] = field(default_factory=dict)  # other argparse keywords

    @property
    def dest(self) -> str:
        return self.name.removeprefix("--").replace("-", "_")


FLAGS = (
    Flag("--jobs", ("local", "ray"), 1, "runs at a time on this machine: worker processes, or an embedded Ray's"
         " CPUs / --threads (default 1)", int),
    Flag("--ray-address", ("ray",), None, "a running Ray cluster: auto (the one `ray start` started on this"
         " node) or HOST:PORT; without it a local Ray is started for the sweep and stopped after it",
         extra={"metavar": "auto|HOST:PORT"}),
    Flag("--gpus-per-run", ("ray",), 0.0, "GPUs Ray reserves for each run; a fraction packs runs onto one GPU"
         " (0.25: four at a time); above 0 the runs train on cuda (default 0)", float),
    Flag("--max-retries", ("ray",), 3, "times Ray reruns a run whose worker died (default 3); a run that"
         " raises an error is reported, not retried", int),
    Flag("--slurm-partition", ("slurm",), None, "Slurm partition of the job array (default: the cluster's)"),
    Flag("--slurm-time", ("slurm",), "60", "time limit of each run: minutes, or [D-]HH:MM:SS (default 60)"),
    Flag("--slurm-gpus-per-run", ("slurm",), 0, "GPUs of each array task; above 0 the runs train on cuda"
         " (default 0)", int),
    Flag("--slurm-array-parallelism", ("slurm",), 256, "array tasks running at a time (default 256)", int),
    Flag("--slurm-cluster", ("slurm",), "slurm", "slurm, or local: submitit's LocalExecutor runs every array task"
         " at once on this machine, to try a small grid before submitting it (default slurm)",
         extra={"choices": SLURM_CLUSTERS}),
)  # fmt: skip


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="where the runs execute: local worker processes (default), a Ray cluster, or a Slurm job array."
        " Optional packages: pip install epinet-bench[ray|slurm]",
    )
    for flag in FLAGS:
        parser.add_argument(flag.name, type=flag.parse, default=None, help=flag.help, **flag.extra)


@dataclass
class Backend:
    executor: Any  # a sweep.Executor
    device: str  # what each run is given (auto, cpu, cuda[:N])
    here: int | None  # runs at a time on this machine (its memory must hold them); None: elsewhere


def backend_from(args, threads: int, n_runs: int) -> Backend:
    """The executor the flags ask for; a bad combination or a missing package is a ValueError
    in one line, before anything runs."""
    backend = args.backend
    for flag in FLAGS:
        if getattr(args, flag.dest) is not None and backend not in flag.backends:
            raise ValueError(f"{flag.name} applies to --backend {' or '.join(flag.backends)}, not {backend}")
    if backend in PACKAGES:
        module, extra = PACKAGES[backend]
        require(module, extra, f"--backend {backend}")
    given = {flag.dest: getattr(args, flag.dest) for flag in FLAGS}
    value = {flag.dest: flag.default if given[flag.dest] is None else given[flag.dest] for flag in FLAGS}
    jobs = _at_least(1, "--jobs", value["jobs"])
    if backend == "local":
        from benchmarks.sweep import LocalPool

        return Backend(LocalPool(jobs=jobs, threads_per_job=threads), devices.parse(args.device), jobs)
    if backend == "ray":
        from benchmarks.backends.ray_pool import RayPool

        address = value["ray_address"]
        if address and given["jobs"] is not None:
            raise ValueError("--jobs sizes the Ray started for the sweep; with --ray-address the cluster's CPUs decide")
        gpus = _at_least(0, "--gpus-per-run", value["gpus_per_run"])
        pool = RayPool(
            address=address,
            threads_per_job=threads,
            gpus_per_job=gpus,
            max_retries=_at_least(0, "--max-retries", value["max_retries"]),
            cpus=None if address else jobs * threads,
        )
        return Backend(pool, device_for_gpus(args.device, gpus, "--gpus-per-run"), None if address else jobs)
    from benchmarks.backends.slurm_array import SlurmArray

    gpus = _at_least(0, "--slurm-gpus-per-run", value["slurm_gpus_per_run"])
    array = SlurmArray(
        folder=Path(args.results) / "submitit",
        threads_per_job=threads,
        partition=value["slurm_partition"],
        time_minutes=slurm_minutes(value["slurm_time"]),
        gpus_per_job=gpus,
        array_parallelism=_at_least(1, "--slurm-array-parallelism", value["slurm_array_parallelism"]),
        cluster=value["slurm_cluster"],
    )
    device = device_for_gpus(args.device, gpus, "--slurm-gpus-per-run")
    local = value["slurm_cluster"] == "local"
    if not local and not (shutil.which("sbatch") and shutil.which("srun")):
        raise ValueError(
            "--backend slurm submits with Slurm's sbatch and srun, not found here: run the sweep on the"
            " cluster's login node, or add --slurm-cluster local to try the array on this machine"
        )
    return Backend(array, device, n_runs if local else None)


def device_for_gpus(given: str | None, gpus: float, flag: str) -> str:
    """A scheduler's run trains on the GPUs it reserved, and only on those: cuda when it reserved
    some, cpu when it reserved none. Ray leaves a node's GPUs visible to a task that reserved
    none, so ``auto`` there must not mean "any GPU in sight"."""
    if given is None or devices.parse(given) == "auto":
        return "cuda" if gpus else "cpu"
    if devices.wants_cuda(given) and not gpus:
        raise ValueError(f"--device {given} needs {flag} above 0: a run may use only the GPUs reserved for it")
    if given == "cpu" and gpus:
        raise ValueError(f"{flag} {gpus:g} reserves GPUs that --device cpu would leave idle")
    return given


_SLURM_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def slurm_minutes(text: str) -> int:
    """Slurm's --time formats (minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]) as whole minutes."""
    match = _SLURM_TIME.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"--slurm-time must be minutes or [D-]HH:MM:SS (got {text!r})")
    days, a, b, c = (int(g) if g is not None else None for g in match.groups())
    if days is not None:
        hours, minutes, seconds = a, b or 0, c or 0
    elif c is not None:
        hours, minutes, seconds = a, b, c
    else:
        hours, minutes, seconds = 0, a, b or 0
    total = math.ceil(((days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds) / 60)
    if total < 1:
        raise ValueError(f"--slurm-time must be at least one minute (got {text!r})")
    return total


def _at_least(low, name: str, value):
    if value < low:
        raise ValueError(f"{name} must be at least {low} (got {value:g})")
    return value
