"""``--backend ray``: one Ray task per run, on an embedded local Ray or a running cluster.

Ray does the scheduling, the packing and the retrying: each task reserves ``num_cpus`` (the
run's torch threads) and ``num_gpus`` (a fraction packs several small runs onto one GPU, and Ray
makes only the reserved GPU visible to the task); ``max_retries`` reruns a task whose worker
process or node died, while an exception raised by the run itself comes back as the task's
value and is reported, not retried (a deterministic run would fail the same way again).
On an embedded local Ray on Linux with no GPU reserved, a worker process runs one run after
another (``max_calls=0``): the worker's start and the imports (Ray, torch, Avalanche) are paid
once per worker rather than once per run, and no replacement worker has to start after each
run. Results do not depend on it (every run seeds itself). Each run's peak RSS stays its own:
before it, the worker collects its garbage, gives freed heap back to the kernel
(``malloc_trim``) and resets its high-water mark (``VmHWM``, what the run reports) by writing 5
to ``/proc/self/clear_refs``. Elsewhere (a cluster, whose nodes this process cannot check; a
reserved GPU, whose memory a fresh process releases; no ``clear_refs``) ``max_calls=1`` gives
every run a fresh worker process, as the local pool does.

The task returns the run's record and the sweep writes it (``shared_results`` False), so the
workers need no shared filesystem. They need the harness and the data: a local Ray inherits
this environment; on a cluster, every node must import the same epinet-bench and find the
data root at the path given (README, "Running on a cluster").

Stopping: on any exception in the sweep (Ctrl-C, SIGTERM turned into one by the CLI) the
outstanding tasks are cancelled (their workers killed) and an embedded Ray is shut down.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.interrupts import Interrupted, signals_deferred
from benchmarks.worker import outcome

# Test hook: a folder of tickets ``<config hash>-seed<N>``; a task that finds its ticket takes
# it and then kills its own worker process, once, as a node dying mid-run would.
CRASH_ONCE = "EPINET_BENCH_CRASH_ONCE_DIR"


def crash_ticket(folder: Path, config) -> Path:
    return Path(folder) / f"{config.config_hash()}-seed{config.seed}"


def peak_resettable() -> bool:
    """Whether this process can reset its peak RSS (Linux's ``/proc/self/clear_refs``)."""
    return sys.platform.startswith("linux") and os.access("/proc/self/clear_refs", os.W_OK)


def reset_peak_rss() -> bool:
    """Make this process's ``VmHWM`` start again from what it holds now, after freeing what an
    earlier run in this worker left behind; False where the kernel does not allow it."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)  # glibc: return the freed heap, or it counts in the next peak
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak resident set size to the current one
    except OSError:
        return False
    return True


def run_task(job, config, threads: int, reused: bool = False):
    """The body of each Ray task: the run's record, or the exception it raised (returned, not
    raised, so Ray never retries a failed run and the sweep reports it as the local pool does).
    ``reused``: the worker may have run others before; the peak RSS is reset to make it this run's."""
    if reused and not reset_peak_rss():
        return RuntimeError("this Ray worker cannot reset its peak RSS (/proc/self/clear_refs) for a new run")
    record = outcome(job, config, threads)
    folder = os.environ.get(CRASH_ONCE)
    if folder:
        ticket = crash_ticket(folder, config)
        try:
            ticket.rename(ticket.with_name(ticket.name + ".crashed"))
        except FileNotFoundError:
            return record
        os._exit(1)  # the run is done but its result is lost with the worker: Ray must rerun it
    return record


@dataclass
class RayPool:
    address: str | None = None  # None: start a local Ray for the sweep (and stop it after)
    threads_per_job: int = 1
    gpus_per_job: float = 0.0
    max_retries: int = 3
    cpus: int | None = None  # CPUs of the embedded Ray (--jobs x --threads); None: all of this machine's
    poll: float = 0.2  # seconds between checks for a finished task; a signal waits at most this long
    shared_results = False

    def map(self, fn, configs):
        import ray

        starts = not ray.is_initialized()  # a Ray this process did not start (a test's) stays up
        pending: dict = {}
        try:
            self._connect(ray)
            self._check_fits(ray)
            reuse = self.reuses_workers()
            task = ray.remote(
                num_cpus=self.threads_per_job,
                num_gpus=self.gpus_per_job,
                max_retries=self.max_retries,
                max_calls=0 if reuse else 1,  # 0: no limit
            )(run_task)
            job = ray.put(fn)
            pending = {task.remote(job, config, self.threads_per_job, reuse): config for config in configs}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll)
                for ref in ready:
                    yield pending.pop(ref), self._outcome(ray, ref)
        except SystemError as err:
            # A signal handler that raises inside Ray's compiled code comes out wrapped in a
            # SystemError: what the sweep must see is the interruption itself.
            if isinstance(err.__cause__, Interrupted | KeyboardInterrupt):
                raise err.__cause__ from None
            raise
        finally:
            with signals_deferred():  # the cancelling and the stopping are not cut short
                for ref in pending:
                    ray.cancel(ref, force=True)
                if starts and ray.is_initialized():  # disconnects from a cluster; stops a local Ray
                    ray.shutdown()

    def reuses_workers(self) -> bool:
        """One worker process for many runs: only on this machine (its kernel checked here), on CPU."""
        return self.address is None and not self.gpus_per_job and peak_resettable()

    def _connect(self, ray) -> None:
        """Connect to the cluster, or start a local Ray, unless this process already did."""
        if ray.is_initialized():
            return
        handler = signal.getsignal(signal.SIGTERM)
        try:
            ray.init(
                address=self.address or "local",  # "local": a new Ray, not one that runs here (ray.init's default)
                num_cpus=None if self.address else self.cpus,
                include_dashboard=False,
                log_to_driver=False,  # the runs are quiet; a failure comes back with its exception
                logging_level=logging.ERROR,  # the sweep's output stays as with the local pool
            )
        finally:
            signal.signal(signal.SIGTERM, handler)  # ray.init put in one that exits at once, with no cleanup

    def _check_fits(self, ray) -> None:
        """A task that no node can hold would wait forever: say so instead."""
        total = ray.cluster_resources()
        needs = (("CPU", self.threads_per_job, "--threads"), ("GPU", self.gpus_per_job, "--gpus-per-run"))
        for name, need, flag in needs:
            if need > total.get(name, 0):
                raise ValueError(f"{flag} {need:g}: the Ray cluster has {total.get(name, 0):g} {name}s in all")

    def _outcome(self, ray, ref):
        from ray.exceptions import RayError

        try:
            return ray.get(ref)  # the record, or the exception the run raised
        except RayError as err:  # its worker or node died, on every try
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            tries = f"{self.max_retries + 1} tr{'y' if self.max_retries == 0 else 'ies'}"
            return RuntimeError(f"Ray lost the run on {tries} ({type(err).__name__}): {first}")
