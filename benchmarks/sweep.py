"""Run a grid of configurations, skipping finished runs, behind a small executor interface.

An executor maps a picklable function over run configs and yields ``(config, outcome)`` as
runs finish, where the outcome is the run record or the exception it raised. ``LocalPool``
runs each config in a fresh worker process (clean peak-RSS numbers, one torch thread each);
a distributed backend implements the same ``map``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

from tqdm.auto import tqdm

from benchmarks.config import RunConfig
from benchmarks.store import ensure_writable, result_path, valid_result_for


class Executor(Protocol):
    def map(self, fn: Callable, configs: list[RunConfig]) -> Iterator[tuple[RunConfig, object]]: ...


class Serial:
    """Runs in this process, one after another (tests, debugging)."""

    def map(self, fn, configs):
        for config in configs:
            try:
                yield config, fn(config)
            except Exception as err:  # reported by the sweep, the other runs go on
                yield config, err


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    import warnings

    warnings.filterwarnings("ignore")


@dataclass
class LocalPool:
    """A pool of ``jobs`` worker processes; each process runs one config and exits."""

    jobs: int = 1
    threads_per_job: int = 1

    def map(self, fn, configs):
        with ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=get_context("spawn"),
            max_tasks_per_child=1,
            initializer=_init_worker,
            initargs=(self.threads_per_job,),
        ) as pool:
            futures = {pool.submit(fn, config): config for config in configs}
            try:
                for future in as_completed(futures):
                    try:
                        yield futures[future], future.result()
                    except Exception as err:
                        yield futures[future], err
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM): stop the workers too, or they would go on as
                # orphans. Python 3.11 has no public way to end running tasks; finished
                # results are already on disk and a rerun resumes from them.
                workers = list((pool._processes or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for process in workers:
                    process.terminate()
                raise


@dataclass
class _StoreRun:
    """Picklable job: run one config quietly and store its JSON."""

    results_dir: Path

    def __call__(self, config: RunConfig) -> dict:
        from benchmarks.runner import run_and_store

        return run_and_store(config, self.results_dir, progress=False)


@dataclass
class SweepReport:
    done: list[dict] = field(default_factory=list)  # records, reused or new
    ran: list[RunConfig] = field(default_factory=list)
    skipped: list[RunConfig] = field(default_factory=list)
    failed: list[tuple[RunConfig, str]] = field(default_factory=list)
    reruns: list[str] = field(default_factory=list)  # why a stored result was not trusted


def plan(configs: Iterable[RunConfig], results_dir: Path, report: SweepReport) -> list[RunConfig]:
    """Which configs still need running; valid stored results are reused, bad ones reported."""
    todo = []
    for config in configs:
        result, problem = valid_result_for(result_path(results_dir, config), config)
        if result is not None:
            report.skipped.append(config)
            report.done.append(result.model_dump())
            continue
        if problem:
            report.reruns.append(problem)
        todo.append(config)
    return todo


def sweep(configs: list[RunConfig], results_dir: Path, executor: Executor, *, progress: bool = True, log=print) -> SweepReport:
    ensure_writable(results_dir)
    report = SweepReport()
    todo = plan(configs, results_dir, report)
    for problem in report.reruns:
        log(f"rerunning: {problem}")
    log(f"{len(configs)} runs: {len(report.skipped)} already done, {len(todo)} to run")
    bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress, file=sys.stderr)
    for config, outcome in executor.map(_StoreRun(Path(results_dir)), todo):
        bar.update()
        if isinstance(outcome, Exception):
            report.failed.append((config, f"{type(outcome).__name__}: {outcome}"))
            log(f"FAILED {config.strategy} on {config.benchmark} seed {config.seed}: {outcome}")
        else:
            report.ran.append(config)
            report.done.append(outcome)
    bar.close()
    return report


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))
