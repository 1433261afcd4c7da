"""``--backend ray`` end to end on a local Ray of 2 CPUs (one per module: Ray takes seconds to start).

The same configs give the same results as on the local pool; a worker that dies after its
run (its result lost with it) is retried and the grid completes with nothing lost; a run that
raises is reported once, not retried; a worker that runs several runs in turn gives each the
local pool's results and a peak RSS of its own; and the CLI, with a Ray of its own, resumes, prints its
table, and on SIGTERM cancels its tasks, stops its Ray and exits 143 with nothing left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from benchmarks.config import SweepConfig
from benchmarks.runner import peak_rss_bytes
from benchmarks.store import read_result, result_path
from benchmarks.sweep import LocalPool, RunJob, sweep
from tests.benchmarks.processes import command_line, descendants

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install epinet-bench[ray])")
from benchmarks.backends.ray_pool import CRASH_ONCE, RayPool, crash_ticket  # noqa: E402 (needs ray)

REPO = Path(__file__).resolve().parents[2]
GRID = {  # two runs: one round on the module's 2 CPUs
    "name": "ray",
    "seeds": [0],
    "defaults": {"batch_size": 32, "eval_batch_size": 500, "memory": 20, "n_experiences": 2},
    "experiments": [{"name": "main", "benchmarks": ["split-mnist"], "strategies": ["naive", "epinet"]}],
}


@pytest.fixture(scope="module")
def crash_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("crash-tickets")


@pytest.fixture(scope="module")
def local_ray(crash_dir):
    """One local Ray for the module's in-process sweeps; its workers inherit the crash hook."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CRASH_ONCE, str(crash_dir))
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture
def configs(synthetic_root):
    return SweepConfig.model_validate(GRID).runs(data_root=str(synthetic_root))


def quiet_sweep(configs, results, executor):
    return sweep(configs, results, executor, progress=False, log=lambda *a: None, warn=lambda *a: None)


def key(config) -> tuple:
    return config.strategy, config.seed


def by_run(report) -> dict:
    return {(r["config"]["strategy"], r["config"]["seed"]): r for r in report.done}


def test_ray_gives_the_local_pools_results_and_resumes(local_ray, configs, tmp_path):
    on_ray = quiet_sweep(configs, tmp_path / "ray", RayPool(threads_per_job=1))
    on_pool = quiet_sweep(configs, tmp_path / "pool", LocalPool(jobs=2, threads_per_job=1))
    assert on_ray.failed == [] and len(on_ray.ran) == len(configs) == 2
    ray_runs, pool_runs = by_run(on_ray), by_run(on_pool)
    assert ray_runs.keys() == pool_runs.keys()
    for key, record in ray_runs.items():
        assert record["accuracy_matrix"] == pool_runs[key]["accuracy_matrix"], key
        assert record["metrics"]["final_accuracy"] == pool_runs[key]["metrics"]["final_accuracy"]
        assert record["machine"]["torch_threads"] == 1 and record["device"]["type"] == "cpu"
    for config in configs:  # written by the driver, atomically, where the local pool writes
        stored = read_result(result_path(tmp_path / "ray", config))
        assert stored.accuracy_matrix == ray_runs[config.strategy, config.seed]["accuracy_matrix"]
    assert not list((tmp_path / "ray").rglob("*.tmp"))

    again = quiet_sweep(configs, tmp_path / "ray", RayPool(threads_per_job=1))
    assert again.ran == [] and len(again.skipped) == 2


def test_a_worker_that_dies_is_retried_and_nothing_is_lost(local_ray, crash_dir, configs, tmp_path):
    victim = next(c for c in configs if c.strategy == "epinet")
    ticket = crash_ticket(crash_dir, victim)
    ticket.touch()
    report = quiet_sweep(configs, tmp_path / "res", RayPool(threads_per_job=1, max_retries=2))
    assert ticket.with_name(ticket.name + ".crashed").exists() and not ticket.exists()  # it did die, once
    assert report.failed == [] and len(report.ran) == 2
    assert all(read_result(result_path(tmp_path / "res", c)) for c in configs)


def test_with_no_retries_a_lost_run_is_reported_and_the_others_finish(local_ray, crash_dir, configs, tmp_path):
    victim = next(c for c in configs if c.strategy == "naive")
    crash_ticket(crash_dir, victim).touch()
    report = quiet_sweep(configs, tmp_path / "res", RayPool(threads_per_job=1, max_retries=0))
    ((failed, why),) = report.failed
    assert failed == victim and "Ray lost the run on 1 try (" in why
    assert len(report.ran) == 1 and not result_path(tmp_path / "res", victim).exists()


def test_a_run_that_raises_is_reported_not_retried(local_ray, configs, tmp_path):
    broken = configs[0].model_copy(update={"data_root": str(tmp_path / "no-data")})
    report = quiet_sweep([broken, configs[1]], tmp_path / "res", RayPool(threads_per_job=1, max_retries=3))
    ((failed, why),) = report.failed
    assert failed == broken and why.startswith("DataError") and "no-data" in why
    assert len(report.ran) == 1


def test_a_run_no_node_can_hold_is_an_error_not_a_wait(local_ray, configs, tmp_path):
    with pytest.raises(ValueError, match="--threads 3: the Ray cluster has 2 CPUs in all"):
        quiet_sweep(configs, tmp_path / "res", RayPool(threads_per_job=3))
    with pytest.raises(ValueError, match="--gpus-per-run 0.5: the Ray cluster has 0 GPUs in all"):
        quiet_sweep(configs, tmp_path / "res", RayPool(threads_per_job=1, gpus_per_job=0.5))


@dataclass
class InWorker:
    """A job that also says which process ran it and that process's peak RSS; the seed-0 runs
    first fill ``hog_mib`` MiB (touched, so resident), as a memory-hungry run would."""

    job: object = None
    hog_mib: int = 0

    def __call__(self, config):
        hog = b"\x01" * (self.hog_mib << 20) if config.seed == 0 else b""
        record = self.job(config) if self.job else {}
        del hog
        return {"record": record, "pid": os.getpid(), "peak": peak_rss_bytes()}


def test_a_reused_worker_gives_each_run_the_local_pools_results(local_ray, configs):
    """2 CPUs per run on a Ray of 2: the runs go one at a time, several in one worker."""
    two_seeds = configs + [c.model_copy(update={"seed": 1}) for c in configs]
    pool = RayPool(threads_per_job=2)
    assert pool.reuses_workers()  # Linux, this machine, no GPU
    on_ray = {key(c): out for c, out in pool.map(InWorker(RunJob(None)), two_seeds)}
    on_pool = {key(c): out for c, out in LocalPool(jobs=1, threads_per_job=2).map(RunJob(None), two_seeds)}
    assert len({out["pid"] for out in on_ray.values()}) < len(two_seeds)  # some worker ran more than one
    assert on_ray.keys() == on_pool.keys() and len(on_ray) == 4
    for run, out in on_ray.items():
        assert out["record"]["accuracy_matrix"] == on_pool[run]["accuracy_matrix"], run
        assert out["record"]["metrics"]["final_accuracy"] == on_pool[run]["metrics"]["final_accuracy"]


def test_a_reused_worker_reports_each_runs_own_peak_rss(local_ray, configs):
    """A run after a 600 MiB one in the same worker does not report the 600 MiB as its own."""
    runs = [configs[0].model_copy(update={"seed": seed}) for seed in range(8)]  # one at a time, seed 0 first
    out = {c.seed: o for c, o in RayPool(threads_per_job=2).map(InWorker(hog_mib=600), runs)}
    hogs, others = [o for seed, o in out.items() if seed == 0], [o for seed, o in out.items() if seed != 0]
    (hog,) = hogs
    assert hog["peak"] > 600 << 20
    after = [o for o in others if o["pid"] == hog["pid"]]
    assert after, "no other run went to the worker that ran the 600 MiB one"
    assert all(o["peak"] < hog["peak"] - (400 << 20) for o in after)


def test_a_cluster_or_a_gpu_gets_a_fresh_worker_per_run():
    assert not RayPool(address="auto").reuses_workers()
    assert not RayPool(gpus_per_job=0.5).reuses_workers()


# ----------------------------------------------------------------------------- the CLI, with its own Ray

SLOW = """
name: ray-cli
seeds: [0, 1]
defaults: {epochs: 3, batch_size: 16, n_experiences: 2}
experiments:
  - {name: main, benchmarks: [split-mnist], strategies: [naive]}
"""


def cli(sweep_file, results, data_root, *extra) -> list[str]:
    return [sys.executable, "-m", "benchmarks.cli", "sweep", str(sweep_file), "--backend", "ray", "--jobs", "2",
            "-q", "--results", str(results), "--data-root", str(data_root), *extra]  # fmt: skip


def test_cli_sigterm_cancels_the_tasks_stops_its_ray_and_a_rerun_resumes(tmp_path, synthetic_root):
    """Not under the module's Ray: the CLI starts and stops one of its own."""
    sweep_file, results = tmp_path / "slow.yaml", tmp_path / "res"
    sweep_file.write_text(SLOW)
    proc = subprocess.Popen(cli(sweep_file, results, synthetic_root), cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    sweep = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("ray::run_task" in command_line(p) for p in descendants(sweep)):
        time.sleep(0.2)  # until a task runs: a signal then finds work to cancel
    started = descendants(sweep)
    assert any("ray::run_task" in command_line(p) for p in started), "no Ray task started within 120 s"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert time.monotonic() - sent < 20, "the sweep took too long to stop"
    assert "interrupted; finished runs are saved" in err
    _, alive = psutil.wait_procs(started, timeout=15)
    assert [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    finished = list(results.rglob("seed*.json"))
    assert all(read_result(p) for p in finished) and not list(results.rglob("*.tmp"))

    done = subprocess.run(cli(sweep_file, results, synthetic_root), cwd=REPO, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert f"{2 - len(finished)} ran, {len(finished)} reused, 0 failed" in done.stdout
    assert "split-mnist    naive" in done.stdout  # the summary table, as with the local pool
    assert len(list(results.rglob("seed*.json"))) == 2


def test_the_crash_hook_is_off_unless_asked(monkeypatch):
    from benchmarks.backends.ray_pool import run_task

    monkeypatch.delenv(CRASH_ONCE, raising=False)
    assert run_task(lambda config: {"ran": config}, "cfg", 1) == {"ran": "cfg"}
    assert run_task(lambda config: {"ran": config}, "cfg", 1, reused=True) == {"ran": "cfg"}
    assert os.environ.get(CRASH_ONCE) is None
