"""``sweep --backend``'s flags and ``--device`` on bad input: one line, no traceback, nothing
written, nothing started. And what the Slurm flags become in submitit's sbatch script."""

from __future__ import annotations

import importlib.util
import os
import stat

import pytest

from benchmarks.backends import FLAGS, backend_from, slurm_minutes
from benchmarks.cli import build_parser, main

SWEEP = """
name: flags
seeds: [0]
defaults: {batch_size: 32, n_experiences: 2}
experiments:
  - {name: main, benchmarks: [split-mnist], strategies: [naive]}
"""


@pytest.fixture
def sweep_argv(tmp_path, synthetic_root):
    path = tmp_path / "flags.yaml"
    path.write_text(SWEEP)

    def argv(*extra):
        where = ["--data-root", str(synthetic_root), "--results", str(tmp_path / "res")]
        return ["sweep", str(path), *where, "-q", *extra]

    return argv


def one_line_error(capsys, argv, expected: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert expected in err, err
    return err


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--gpus-per-run", "1"], "--gpus-per-run applies to --backend ray, not local"),
        (["--slurm-partition", "gpu"], "--slurm-partition applies to --backend slurm, not local"),
        (["--backend", "ray", "--slurm-time", "10"], "--slurm-time applies to --backend slurm, not ray"),
        (["--backend", "slurm", "--ray-address", "auto"], "--ray-address applies to --backend ray, not slurm"),
        (["--backend", "slurm", "--jobs", "2"], "--jobs applies to --backend local or ray, not slurm"),
        (["--backend", "ray", "--ray-address", "auto", "--jobs", "2"], "--jobs sizes the Ray started for the sweep"),
        (["--backend", "ray", "--gpus-per-run", "-1"], "--gpus-per-run must be at least 0 (got -1)"),
        (["--backend", "ray", "--max-retries", "-1"], "--max-retries must be at least 0 (got -1)"),
        (["--backend", "ray", "--device", "cuda"], "--device cuda needs --gpus-per-run above 0"),
        (["--backend", "ray", "--gpus-per-run", "0.5", "--device", "cpu"], "--gpus-per-run 0.5 reserves GPUs"),
        (["--backend", "slurm", "--device", "cuda:1"], "--device cuda:1 needs --slurm-gpus-per-run above 0"),
        (["--backend", "slurm", "--slurm-time", "1:xx"], "--slurm-time must be minutes or [D-]HH:MM:SS (got '1:xx')"),
        (["--backend", "slurm", "--slurm-array-parallelism", "0"], "--slurm-array-parallelism must be at least 1"),
        (["--device", "gpu"], "--device must be auto, cpu, cuda or cuda:N (got 'gpu')"),
        (["--backend", "slurm"], "Slurm's sbatch and srun, not found here"),
    ],
)
def test_bad_backend_flags_are_one_line_before_anything_runs(capsys, sweep_argv, tmp_path, extra, expected, forbid):
    import benchmarks.sweep

    forbid(benchmarks.sweep, "sweep", "a bad flag must stop the command before the sweep")
    one_line_error(capsys, sweep_argv(*extra), expected)
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("backend, module, extra", [("ray", "ray", "ray"), ("slurm", "submitit", "slurm")])
def test_a_missing_backend_package_is_one_line_naming_the_extra(
    capsys, sweep_argv, tmp_path, monkeypatch, backend, module, extra
):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    err = one_line_error(capsys, sweep_argv("--backend", backend), f"pip install epinet-bench[{extra}]")
    assert err == (
        f"epinet-bench: error: --backend {backend} needs the {module} package, which is not installed:"
        f" pip install epinet-bench[{extra}]"
    )
    assert not (tmp_path / "res").exists()


def test_device_is_checked_by_run_and_perf_too(capsys, tmp_path, synthetic_root, run_argv):
    one_line_error(capsys, run_argv(synthetic_root, tmp_path / "res", "--device", "cuda:x"), "--device must be")
    one_line_error(capsys, ["perf", "--device", "tpu", "--out", str(tmp_path / "p")], "--device must be")
    assert not (tmp_path / "res").exists() and not (tmp_path / "p").exists()


def test_a_cuda_device_this_machine_lacks_is_one_line(capsys, tmp_path, synthetic_root, run_argv):
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    err = one_line_error(capsys, run_argv(synthetic_root, tmp_path / "res", "--device", f"cuda:{count}"), "--device")
    assert ("no CUDA device here" in err) if count == 0 else (f"has {count} CUDA device(s)" in err)
    assert not list((tmp_path / "res").rglob("*.json"))


def test_every_backend_flag_is_in_the_parser_with_its_help():
    sweep = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "sweep")[1]
    flags = {opt: action for action in sweep._actions for opt in action.option_strings}
    for flag in FLAGS:
        assert flag.name in flags and flags[flag.name].help == flag.help
    assert flags["--backend"].choices == ("local", "ray", "slurm") and flags["--backend"].default == "local"


def test_the_default_backend_is_todays_local_pool(tmp_path):
    from benchmarks.sweep import LocalPool

    args = build_parser().parse_args(["sweep", "x.yaml", "--jobs", "3", "--threads", "2"])
    backend = backend_from(args, threads=2, n_runs=5)
    assert backend.executor == LocalPool(jobs=3, threads_per_job=2) and backend.device == "cpu" and backend.here == 3


def test_gpus_reserved_mean_cuda_and_none_mean_cpu():
    pytest.importorskip("ray", reason="the ray extra is not installed")
    parse = build_parser().parse_args
    ray = backend_from(parse(["sweep", "x.yaml", "--backend", "ray", "--gpus-per-run", "0.25"]), 1, 4)
    assert ray.device == "cuda" and ray.executor.gpus_per_job == 0.25 and ray.here == 1
    # auto with nothing reserved: Ray leaves the node's GPUs visible, and an unreserved run must not take one
    assert backend_from(parse(["sweep", "x.yaml", "--backend", "ray", "--device", "auto"]), 1, 4).device == "cpu"
    remote = backend_from(parse(["sweep", "x.yaml", "--backend", "ray", "--ray-address", "auto"]), 2, 4)
    assert remote.here is None and remote.executor.cpus is None and remote.executor.threads_per_job == 2


@pytest.mark.parametrize(
    "text, minutes",
    [("90", 90), ("5:30", 6), ("1:00:00", 60), ("2-00", 2880), ("1-02:03", 1563), ("0-00:00:59", 1), (" 45 ", 45)],
)
def test_slurm_time_formats(text, minutes):
    assert slurm_minutes(text) == minutes


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "0", "-5", "0:00"])
def test_slurm_time_rejects(text):
    with pytest.raises(ValueError, match="--slurm-time"):
        slurm_minutes(text)


def test_slurm_flags_become_the_array_jobs_sbatch_lines(tmp_path, monkeypatch):
    """submitit writes the sbatch script and calls ``sbatch``: a stand-in ``sbatch`` on PATH keeps
    the script, so the test reads what a cluster would have received."""
    pytest.importorskip("submitit", reason="the slurm extra is not installed")
    from benchmarks.config import RunConfig
    from benchmarks.sweep import RunJob

    bin_dir, kept = tmp_path / "bin", tmp_path / "kept.sh"
    bin_dir.mkdir()
    # submitit looks for srun before it submits; sbatch keeps the script and answers as Slurm does
    for name, body in (("srun", "exit 0"), ("sbatch", f'cp "$1" {kept}\necho "Submitted batch job 4242"')):
        fake = bin_dir / name
        fake.write_text(f"#!/bin/sh\n{body}\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    args = build_parser().parse_args(
        ["sweep", "x.yaml", "--backend", "slurm", "--results", str(tmp_path / "res"), "--threads", "2",
         "--slurm-partition", "gpu", "--slurm-time", "1:30:00", "--slurm-gpus-per-run", "1",
         "--slurm-array-parallelism", "2"]
    )  # fmt: skip
    backend = backend_from(args, threads=2, n_runs=3)
    assert backend.device == "cuda" and backend.here is None
    configs = [RunConfig(benchmark="split-mnist", strategy="naive", seed=s) for s in range(3)]
    jobs = backend.executor.executor().map_array(RunJob(None), configs)
    assert [job.job_id for job in jobs] == ["4242_0", "4242_1", "4242_2"]
    script = kept.read_text()
    for line in ("--array=0-2%2", "--partition=gpu", "--time=90", "--gpus-per-node=1", "--cpus-per-task=2",
                 "--job-name=epinet-bench", "--nodes=1", "--ntasks-per-node=1"):  # fmt: skip
        assert f"#SBATCH {line}\n" in script, line
    assert str(tmp_path / "res" / "submitit") in script  # its logs and pickles sit beside the results
