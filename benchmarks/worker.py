"""A sweep worker: ``python -m benchmarks.worker JOB OUTCOME PARENT_PID``.

Runs one pickled ``(job, config, threads)`` and pickles the outcome (the job's return value,
or the exception it raised). Kept small and free of heavy imports until its signal handling
is in place, so that a signal at any moment ends it cleanly:

* SIGTERM and SIGINT raise inside the run, so ``store.write_atomic`` removes its temporary
  file and nothing half-written survives;
* on Linux it asks the kernel for SIGKILL when its parent dies (even by SIGKILL), so a killed
  sweep leaves no orphan behind.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys

from benchmarks.interrupts import Interrupted, raise_on_signals


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        # SIGKILL, not SIGTERM: nothing a worker does (a long C call, a blocked signal) can
        # delay it, and an orphan would go on writing results. What a killed writer leaves
        # (a temporary file) the next sweep removes.
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        raise Interrupted(signal.SIGTERM)


def outcome(job, config, threads: int):
    """``job(config)`` with ``threads`` torch threads, or the exception it raised: what a worker of
    every backend (this module's subprocess, a Ray task, a Slurm array task) hands back, so that a
    failed run is reported alike by all. An exception that cannot be pickled comes back as its text."""
    import torch

    torch.set_num_threads(threads)
    try:
        return job(config)
    except Exception as err:  # reported by the sweep; the other runs go on
        try:
            pickle.dumps(err)
        except Exception:
            return RuntimeError(f"{type(err).__name__}: {err}")
        return err


def main(argv: list[str]) -> int:
    job_path, outcome_path, parent_pid = argv[0], argv[1], int(argv[2])
    raise_on_signals()
    try:
        _die_with_parent(parent_pid)
        with open(job_path, "rb") as f:
            job, config, threads = pickle.load(f)
        payload = pickle.dumps(outcome(job, config, threads))
        with open(outcome_path, "wb") as f:
            f.write(payload)
        return 0
    except Interrupted as stop:
        return stop.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
