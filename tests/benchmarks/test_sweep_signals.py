"""A real ``epinet-bench sweep`` subprocess stopped by SIGTERM, SIGINT and SIGKILL.

Whenever the signal arrives (while the parent plans, while workers import, as results are
being written), to the sweep alone or to its whole process group, and with the CPU kept busy:
the sweep exits within 5 s with 130 or 143, leaves no worker process, no temporary file and no
leaked-semaphore warning, and every result on disk is complete and valid. SIGKILL at random
moments, then a resume, ends with exactly the full grid.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from benchmarks.config import load_sweep
from benchmarks.store import read_result, result_path

EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
# Long enough (epochs) that a signal finds workers mid-run; tiny data keeps each run short.
SWEEP = """
name: signals
seeds: [0, 1, 2]
defaults: {epochs: 15, batch_size: 16, n_experiences: 2}
experiments:
  - {name: main, benchmarks: [split-mnist], strategies: [naive]}
"""


@pytest.fixture
def sweep_file(tmp_path):
    path = tmp_path / "signals.yaml"
    path.write_text(SWEEP)
    return path


def start_sweep(sweep_file, results, data_root, own_group=False) -> subprocess.Popen:
    command = [sys.executable, "-m", "benchmarks.cli", "sweep", str(sweep_file), "--jobs", "2", "-q",
               "--results", str(results), "--data-root", str(data_root)]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # own_group: the sweep leads its own process group, as a shell job does, so a signal can go
    # to the whole group (what Ctrl-C in a terminal or `timeout --foreground` delivers).
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[2], start_new_session=own_group)  # fmt: skip


def workers_of(pid: int) -> list[psutil.Process]:
    """Live sweep workers of parent ``pid`` (they carry the parent's pid as their last argument)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "benchmarks.worker" in cmdline and cmdline[-1] == str(pid):
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.NoSuchProcess:
                pass
    return found


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def check_results_intact(results: Path, sweep_file: Path, data_root: Path) -> int:
    """Every file is a complete, valid result; nothing temporary is left. Returns the count."""
    leftovers = [p for p in results.rglob("*") if p.is_file() and p.suffix == ".tmp"]
    assert leftovers == []
    configs = load_sweep(sweep_file).runs(data_root=str(data_root))
    done = 0
    for config in configs:
        path = result_path(results, config)
        if path.exists():
            read_result(path)  # raises if incomplete or inconsistent
            done += 1
    assert len(list(results.rglob("seed*.json"))) == done
    return done


@pytest.fixture
def busy_cpu():
    """Two processes spinning, as on a loaded machine."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for proc in spinners:
        proc.kill()
        proc.wait()


MOMENTS = {
    "planning": lambda proc, results: time.sleep(0.3) or True,
    "workers-starting": lambda proc, results: wait_until(lambda: workers_of(proc.pid), 20),
    "first-result-written": lambda proc, results: wait_until(lambda: any(results.rglob("seed*.json")), 120),
}


def interrupt_and_check(signum, moment, sweep_file, tmp_path, data_root, to_group=False):
    results = tmp_path / "results"
    proc = start_sweep(sweep_file, results, data_root, own_group=to_group)
    try:
        assert MOMENTS[moment](proc, results), f"the sweep never reached {moment}"
        assert proc.poll() is None, proc.communicate()
        if to_group:
            os.killpg(proc.pid, signum)  # the sweep and every worker at once
        else:
            proc.send_signal(signum)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT[signum], stderr
    assert took < 5, f"exited {took:.1f} s after the signal"
    assert "interrupted" in stderr
    assert "Traceback" not in stderr and "leaked semaphore" not in stderr, stderr
    assert wait_until(lambda: not workers_of(proc.pid), 1), "a worker outlived the sweep"
    check_results_intact(results, sweep_file, data_root)


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_sweep_cleanly(signum, moment, sweep_file, tmp_path, synthetic_root):
    interrupt_and_check(signum, moment, sweep_file, tmp_path, synthetic_root)


@pytest.mark.parametrize("moment", ["workers-starting", "first-result-written"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_to_the_whole_process_group(signum, moment, sweep_file, tmp_path, synthetic_root):
    interrupt_and_check(signum, moment, sweep_file, tmp_path, synthetic_root, to_group=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_sweep_cleanly_on_a_busy_cpu(signum, busy_cpu, sweep_file, tmp_path, synthetic_root):
    interrupt_and_check(signum, "workers-starting", sweep_file, tmp_path, synthetic_root)


def test_sigkill_at_random_moments_then_resume_gives_the_full_grid(sweep_file, tmp_path, synthetic_root):
    rng = random.Random(1234)
    results = tmp_path / "results"
    for _ in range(5):
        proc = start_sweep(sweep_file, results, synthetic_root)
        time.sleep(rng.uniform(0.5, 14.0))
        proc.kill()
        proc.communicate()
        # Workers ask the kernel for SIGTERM when their parent dies: none survives it.
        assert wait_until(lambda pid=proc.pid: not workers_of(pid), 10), "a worker outlived its killed sweep"
        for path in results.rglob("seed*.json"):
            read_result(path)  # whatever is there is complete and valid
    proc = start_sweep(sweep_file, results, synthetic_root)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert check_results_intact(results, sweep_file, synthetic_root) == 3
    assert not [p for p in results.rglob("*corrupt*")], "a killed run left a file that had to be distrusted"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal mask from Linux's /proc")
def test_workers_do_not_inherit_the_blocked_signals(sweep_file, tmp_path, synthetic_root):
    """A sweep starts workers with SIGINT and SIGTERM blocked; each worker must unblock them, or
    a SIGTERM would wait until the SIGKILL that follows it (and nothing would be cleaned up)."""
    proc = start_sweep(sweep_file, tmp_path / "results", synthetic_root)
    try:
        assert wait_until(lambda: workers_of(proc.pid), 20), "no worker started"

        def blocking() -> list[str] | None:
            """What the live workers still block of SIGINT and SIGTERM (None: no worker to read)."""
            found, read = [], 0
            for worker in workers_of(proc.pid):
                try:
                    status = Path(f"/proc/{worker.pid}/status").read_text()
                except FileNotFoundError:  # exited since it was listed
                    continue
                read += 1
                blocked = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
                found += [
                    f"worker {worker.pid} blocks {signum.name}"
                    for signum in (signal.SIGINT, signal.SIGTERM)
                    if blocked & (1 << (signum - 1))
                ]
            return found if read else None

        # A worker blocks them until its first lines unblock them: poll (a loaded machine can take
        # seconds to get there) rather than sleep a fixed time; one that never does fails.
        assert wait_until(lambda: blocking() == [], 30), blocking()
    finally:
        proc.kill()
        proc.communicate()
