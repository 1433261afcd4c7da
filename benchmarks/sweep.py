"""Run a grid of configurations, skipping finished runs, behind a small executor interface.

An executor maps a picklable function over run configs and yields ``(config, outcome)`` as
runs finish, where the outcome is the run record or the exception it raised. ``LocalPool``
runs each config in a fresh worker process (clean peak-RSS numbers, ``DEFAULT_THREADS`` torch
threads each, as ``epinet-bench run``); the distributed backends (``benchmarks.backends``: Ray,
Slurm) implement the same ``map``. Where an executor's workers may not see the results
directory (``shared_results`` False: Ray), the run returns its record and the sweep writes it,
atomically, as it arrives.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from benchmarks.config import DEFAULT_THREADS, RunConfig
from benchmarks.provenance import REPO_ROOT, code_version, short_version
from benchmarks.store import (
    ensure_writable,
    move_aside,
    remove_dead_writers_files,
    result_path,
    valid_result_for,
    write_atomic,
)
from benchmarks.tracking import Tracking


class Executor(Protocol):
    # True: the workers write each result into the results directory themselves; False: they
    # may run where it is not (another machine), and the sweep writes what they return.
    shared_results: bool

    def map(self, fn: Callable, configs: list[RunConfig]) -> Iterator[tuple[RunConfig, object]]: ...


class Serial:
    """Runs in this process, one after another (tests, debugging)."""

    shared_results = True

    def map(self, fn, configs):
        for config in configs:
            try:
                yield config, fn(config)
            except Exception as err:  # reported by the sweep, the other runs go on
                yield config, err


@dataclass
class LocalPool:
    """Up to ``jobs`` worker processes at a time; each runs one config (``benchmarks.worker``)
    in a fresh interpreter with ``threads_per_job`` torch threads, so its peak RSS is its own.

    Plain subprocesses rather than a ``ProcessPoolExecutor``: an interrupted executor can hang
    at interpreter exit joining its manager thread, and its semaphores can leak. Here stopping
    is explicit: on any exception (Ctrl-C, SIGTERM turned into one by the CLI) every worker gets
    SIGTERM, then SIGKILL after ``grace`` seconds, and is reaped before the exception goes on.
    """

    jobs: int = 1
    threads_per_job: int = DEFAULT_THREADS
    shared_results = True
    grace: float = 1.5  # a worker answers SIGTERM within a bytecode, unless inside a long C call (importing torch)
    poll: float = 0.05

    def map(self, fn, configs):
        workdir = Path(tempfile.mkdtemp(prefix="epinet-sweep-"))
        pending = list(enumerate(configs))
        running: dict[subprocess.Popen, tuple[RunConfig, Path]] = {}
        try:
            while pending or running:
                while pending and len(running) < self.jobs:
                    index, config = pending.pop(0)
                    self._start(fn, config, workdir / str(index), running)
                finished = [proc for proc in running if proc.poll() is not None]
                for proc in finished:
                    config, folder = running.pop(proc)
                    yield config, _outcome(proc.returncode, folder)
                if not finished:
                    time.sleep(self.poll)
        finally:
            with signals_blocked():
                _stop(list(running), self.grace)
            shutil.rmtree(workdir, ignore_errors=True)

    def _start(self, fn, config: RunConfig, folder: Path, running: dict) -> None:
        folder.mkdir()
        with open(folder / "job.pickle", "wb") as f:
            pickle.dump((fn, config, self.threads_per_job), f)
        command = [
            sys.executable,
            "-m",
            "benchmarks.worker",
            str(folder / "job.pickle"),
            str(folder / "outcome.pickle"),
            str(os.getpid()),
        ]
        # Signals wait until the worker is recorded in ``running``: one arriving in between
        # would otherwise leave a started worker that nobody stops.
        with signals_blocked(), open(folder / "stderr.log", "wb") as log:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=REPO_ROOT)
            running[proc] = (config, folder)


def _outcome(returncode: int, folder: Path):
    try:
        with open(folder / "outcome.pickle", "rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError):
        pass
    tail = (folder / "stderr.log").read_text(errors="replace").strip().splitlines()[-3:]
    return RuntimeError(f"worker exited with code {returncode}" + (": " + " | ".join(tail) if tail else ""))


@contextmanager
def signals_blocked():
    signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop(processes: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM every live worker, SIGKILL those still alive after ``grace`` seconds, reap all."""
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in processes:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class RunJob:
    """Picklable job: run one config quietly on ``device`` and return its record; with a
    ``results_dir``, also store its JSON there (where the worker sees the results directory)."""

    results_dir: Path | None
    tracking: Tracking | None = None
    device: str = "cpu"

    def __call__(self, config: RunConfig) -> dict:
        from benchmarks.runner import run, run_and_store

        if self.results_dir is None:
            return run(config, progress=False, tracking=self.tracking, device=self.device)
        return run_and_store(config, self.results_dir, progress=False, tracking=self.tracking, device=self.device)


@dataclass
class SweepReport:
    done: list[dict] = field(default_factory=list)  # records, reused or new
    ran: list[RunConfig] = field(default_factory=list)
    skipped: list[RunConfig] = field(default_factory=list)
    failed: list[tuple[RunConfig, str]] = field(default_factory=list)
    reruns: list[str] = field(default_factory=list)  # why a stored result was not trusted, and where it went
    stale: Counter = field(default_factory=Counter)  # code versions of reused results made by other code


def plan(
    configs: Iterable[RunConfig], results_dir: Path, report: SweepReport, *, rerun_stale: bool = False
) -> list[RunConfig]:
    """Which configs still need running. Valid stored results are reused, unless made by another
    code version and ``rerun_stale``; every result that will be rerun is moved aside, not lost."""
    current = code_version()
    todo = []
    for config in configs:
        path = result_path(results_dir, config)
        result, problem = valid_result_for(path, config)
        made_by = None if result is None else short_version(result.git_commit, result.git_dirty)
        # A result from uncommitted code is stale once the tree is clean again; while developing
        # (both dirty at one commit) there is no telling, and it is reused.
        stale = result is not None and (
            result.git_commit != current["git_commit"] or (bool(result.git_dirty) and not current["dirty"])
        )
        if result is not None and not (stale and rerun_stale):
            report.skipped.append(config)
            report.done.append(result.model_dump())
            if stale:
                report.stale[made_by] += 1
            continue
        if problem or result is not None:
            why = "stale" if result is not None else "corrupt"
            moved = move_aside(path, why)
            reason = f"made by code version {made_by}" if result is not None else problem.removeprefix(f"{path}: ")
            report.reruns.append(f"{path}: {reason}; moved to {moved.name}, rerunning")
        todo.append(config)
    return todo


def sweep(
    configs: list[RunConfig],
    results_dir: Path,
    executor: Executor,
    *,
    progress: bool = True,
    log=print,
    warn=print,
    rerun_stale: bool = False,
    tracking: Tracking | None = None,
    device: str = "cpu",
) -> SweepReport:
    """Run what is missing, on ``device``. ``log`` gets progress lines (silent with ``-q``); ``warn``
    gets what a user must see even then: every distrusted result and results made by other code.
    With ``tracking``, each run that runs (not those reused) also logs to its trackers."""
    ensure_writable(results_dir)
    for leftover in remove_dead_writers_files(results_dir):
        log(f"removed {leftover}, left by a run that was killed while writing")
    report = SweepReport()
    todo = plan(configs, results_dir, report, rerun_stale=rerun_stale)
    for problem in report.reruns:
        warn(problem)
    if report.stale:
        versions = ", ".join(f"{version} ({n})" for version, n in report.stale.most_common())
        current = short_version(code_version()["git_commit"], code_version()["dirty"])
        warn(
            f"{sum(report.stale.values())} reused results were made by other code versions than this one"
            f" ({current}): {versions}; --rerun-stale reruns them"
        )
    log(f"{len(configs)} runs: {len(report.skipped)} already done, {len(todo)} to run")
    bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress, file=sys.stderr)
    job = RunJob(Path(results_dir) if executor.shared_results else None, tracking, device)
    try:
        for config, outcome in executor.map(job, todo):
            bar.update()
            if not executor.shared_results and not isinstance(outcome, Exception):
                outcome = _store(outcome, results_dir, config)
            if isinstance(outcome, Exception):
                report.failed.append((config, f"{type(outcome).__name__}: {outcome}"))
                log(f"FAILED {config.strategy} on {config.benchmark} seed {config.seed}: {outcome}")
            else:
                report.ran.append(config)
                report.done.append(outcome)
    finally:
        bar.close()
        # A worker killed while writing (after the grace period) leaves its temporary file.
        remove_dead_writers_files(results_dir)
    return report


def _store(record: dict, results_dir: Path, config: RunConfig) -> dict | OSError:
    """Write a returned record where the run's result belongs; a failed write fails that run only."""
    try:
        write_atomic(result_path(results_dir, config), record)
    except OSError as err:
        return err
    return record
