"""``--backend slurm`` end to end through submitit's LocalExecutor (``--slurm-cluster local``):
the array's tasks write their results into the results directory, the sweep reports and
resumes as with the local pool, a run that raises is reported by its own error, and SIGTERM
cancels the array's unfinished tasks.
(What the Slurm flags become in the sbatch script: test_backends_cli.py.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from benchmarks.cli import main
from benchmarks.config import SweepConfig, load_sweep
from benchmarks.store import read_result, result_path
from benchmarks.sweep import Serial, sweep
from tests.benchmarks.processes import command_line, descendants

pytest.importorskip("submitit", reason="the slurm extra is not installed (pip install epinet-bench[slurm])")
from benchmarks.backends.slurm_array import SlurmArray  # noqa: E402 (needs submitit)

REPO = Path(__file__).resolve().parents[2]

SWEEP = """
name: slurm
seeds: [0, 1]
defaults: {batch_size: 32, eval_batch_size: 500, memory: 20, n_experiences: 2}
experiments:
  - {name: main, benchmarks: [split-mnist], strategies: [replay]}
"""


def test_the_array_writes_every_result_and_a_rerun_reuses_them(tmp_path, synthetic_root, capsys):
    sweep_file, results = tmp_path / "slurm.yaml", tmp_path / "res"
    sweep_file.write_text(SWEEP)
    argv = ["sweep", str(sweep_file), "--backend", "slurm", "--slurm-cluster", "local", "--slurm-time", "10",
            "--data-root", str(synthetic_root), "--results", str(results), "-q"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"2 ran, 0 reused, 0 failed; results in {results}/runs" in out
    assert any(line.split()[:2] == ["split-mnist", "replay"] for line in out.splitlines())  # the summary table

    configs = load_sweep(sweep_file).runs(data_root=str(synthetic_root))
    here = sweep(configs, tmp_path / "serial", Serial(), progress=False, log=lambda *a: None, warn=lambda *a: None)
    for record in here.done:  # the array's tasks computed what this process computes
        config = next(c for c in configs if c.seed == record["config"]["seed"])
        stored = read_result(result_path(results, config))
        assert stored.accuracy_matrix == record["accuracy_matrix"]
        assert stored.device == {"type": "cpu", "name": record["device"]["name"]}
    assert list((results / "submitit").iterdir())  # submitit's own files, beside the runs

    before = {p: p.read_bytes() for p in results.rglob("seed*.json")}
    assert main(argv) == 0
    assert "0 ran, 2 reused, 0 failed" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in results.rglob("seed*.json")} == before


def test_a_run_that_raises_is_reported_by_its_own_error(tmp_path, synthetic_root):
    experiment = {"name": "m", "benchmarks": ["split-mnist"], "strategies": ["naive"]}
    grid = SweepConfig.model_validate({"name": "s", "seeds": [0], "experiments": [experiment]})
    configs = grid.runs(data_root=str(tmp_path / "no-data"))
    array = SlurmArray(folder=tmp_path / "res" / "submitit", cluster="local", time_minutes=5)
    report = sweep(configs, tmp_path / "res", array, progress=False, log=lambda *a: None, warn=lambda *a: None)
    ((failed, why),) = report.failed
    assert failed == configs[0] and why.startswith("DataError") and "no-data" in why


SLOW = """
name: slurm-slow
seeds: [0, 1]
defaults: {epochs: 400, batch_size: 16, n_experiences: 2}  # minutes: only a cancelled run ends early
experiments:
  - {name: main, benchmarks: [split-mnist], strategies: [naive]}
"""


def test_sigterm_cancels_the_arrays_unfinished_tasks(tmp_path, synthetic_root):
    """The sweep stops with 143 and takes its array tasks with it within seconds: none runs on to
    write a result, nothing half-written is left."""
    sweep_file, results, log = tmp_path / "slow.yaml", tmp_path / "res", tmp_path / "sweep.log"
    sweep_file.write_text(SLOW)
    command = [sys.executable, "-m", "benchmarks.cli", "sweep", str(sweep_file), "--backend", "slurm",
               "--slurm-cluster", "local", "-q", "--data-root", str(synthetic_root),
               "--results", str(results)]  # fmt: skip
    # Output to a file: the array's tasks inherit it, and a pipe would stay open while any runs.
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    sweep_proc = psutil.Process(proc.pid)

    def tasks():
        return [p for p in descendants(sweep_proc) if "submitit.core._submit" in command_line(p)]

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(tasks()) < 2:
        time.sleep(0.2)
    started = descendants(sweep_proc)
    assert len(tasks()) == 2, "the array's two tasks did not start within 120 s"
    time.sleep(3)  # into the runs (imports), not only their start
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143, log.read_text()
    _, alive = psutil.wait_procs(started, timeout=20)
    assert [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert list(results.rglob("seed*.json")) == [] and list(results.rglob("*.tmp")) == []
