"""``--backend slurm``: the grid as one Slurm job array, submitted through submitit.

submitit pickles the job, writes the sbatch script (``--array=0-N%parallelism``, partition,
time, CPUs and GPUs per task), submits it and reads each task's return value back; its
files live under ``<results>/submitit/``. Each array task runs one config in a fresh process
and writes its result into the results directory itself (``shared_results``), so the results
directory must be on a filesystem the compute nodes share, and a run finished before the sweep
was stopped is kept: the next sweep reuses it, as with the local pool.

``cluster="local"`` runs the same array through submitit's LocalExecutor on this machine
(every task at once): a way to try a small grid before submitting it, and how the tests
run this backend end to end. Stopping the sweep (Ctrl-C, SIGTERM) cancels the array's
unfinished tasks (``scancel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from benchmarks.sweep import signals_blocked
from benchmarks.worker import outcome

JOB_NAME = "epinet-bench"


@dataclass
class SlurmArray:
    folder: Path  # submitit's scripts, pickles and logs (on the shared filesystem)
    threads_per_job: int = 1
    partition: str | None = None  # None: the cluster's default partition
    time_minutes: int = 60
    gpus_per_job: int = 0
    array_parallelism: int = 256
    cluster: str = "slurm"  # or "local": submitit's LocalExecutor
    poll: float | None = None  # seconds between status checks; None: 10 on Slurm (sacct), 0.2 locally
    shared_results = True

    def parameters(self) -> dict:
        """submitit's parameters for the array (its generic names, and ``slurm_`` ones for Slurm only)."""
        params = {
            "name": JOB_NAME,
            "timeout_min": self.time_minutes,
            "nodes": 1,
            "tasks_per_node": 1,
            "cpus_per_task": self.threads_per_job,
            "gpus_per_node": self.gpus_per_job,
            "slurm_array_parallelism": self.array_parallelism,
        }
        if self.partition:
            params["slurm_partition"] = self.partition
        return params

    def executor(self):
        import submitit

        executor = submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster)
        executor.update_parameters(**self.parameters())
        return executor

    def map(self, fn, configs):
        from submitit.helpers import as_completed

        if not configs:
            return
        jobs = self.executor().map_array(partial(outcome, fn, threads=self.threads_per_job), configs)
        config_of = {id(job): config for job, config in zip(jobs, configs)}
        poll = self.poll if self.poll is not None else (10.0 if self.cluster == "slurm" else 0.2)
        finished = set()
        try:
            for job in as_completed(jobs, poll_frequency=poll):
                finished.add(id(job))
                yield config_of[id(job)], _outcome(job)
        finally:
            with signals_blocked():
                for job in jobs:
                    if id(job) not in finished:
                        job.cancel(check=False)


def _outcome(job):
    """The task's record or the exception its run raised; a task that ended otherwise (time
    limit, node failure, cancelled) is reported by submitit's first line about it."""
    try:
        return job.result()
    except Exception as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        return RuntimeError(f"Slurm task {job.job_id} did not finish: {lines[0] if lines else type(err).__name__}")
