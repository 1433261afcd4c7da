"""Bad input from the reliability review: each ends in one line on stderr and exit 2, with
nothing created or changed on disk, and is answered before torch is imported."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from baselines.registry import known_strategies
from benchmarks.cli import main
from benchmarks.data import FILES, raw_dir, write_idx
from benchmarks.scenarios import BENCHMARKS

SWEEP = """
name: tiny
seeds: [0]
{extra}
experiments:
  - name: main
    benchmarks: [split-mnist]
    strategies: {strategies}
"""


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(root.rglob("*"))}


@pytest.fixture
def unchanged(tmp_path):
    """Asserts, after the test, that nothing under tmp_path was created or changed by the command."""
    before = {}

    def take():
        before.update(snapshot(tmp_path))

    yield take
    assert snapshot(tmp_path) == before


def one_line_error(capsys, argv, *expected) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("epinet-bench"), err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err


def sweep_file(tmp_path, strategies="[naive]", extra="") -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(strategies=strategies, extra=extra))
    return path


@pytest.mark.parametrize(
    "extra, expected",
    [
        (
            "strategy_options: {replayy: {x: 1}}",
            f"key 'replayy' names no known strategy; known: {', '.join(known_strategies())}\n",
        ),
        (
            "strategy_options: {ewc@split-mnsit: {ewc_lambda: 1}}",
            "key 'ewc@split-mnsit' names no known benchmark; known: " + ", ".join(BENCHMARKS),
        ),
        (
            "strategy_options: {epinet: {topk: 3}}",
            "key 'epinet': unknown option 'topk' for strategy 'epinet'; known: alpha, ",
        ),
        (
            "strategy_options: {ewc: {ewc_lamda: 1}}",
            "unknown option 'ewc_lamda' for strategy 'ewc'; known: decay_factor, ewc_lambda, mode",
        ),
    ],
    ids=["unknown-strategy-key", "unknown-benchmark-key", "option-of-a-strategy-not-in-the-grid", "unknown-option"],
)
def test_sweep_strategy_options_must_name_known_things(extra, expected, tmp_path, synthetic_root, capsys, unchanged):
    path = sweep_file(tmp_path, strategies="[naive, ewc]", extra=extra)
    unchanged()
    one_line_error(
        capsys,
        ["sweep", str(path), "--data-root", str(synthetic_root), "--results", str(tmp_path / "res"), "-q"],
        expected,
    )


def test_experiment_without_variants_is_an_empty_grid(tmp_path, synthetic_root, capsys, unchanged):
    path = sweep_file(tmp_path)
    path.write_text(path.read_text().replace("strategies: [naive]", "strategies: [naive]\n    variants: {}"))
    unchanged()
    argv = ["sweep", str(path), "--data-root", str(synthetic_root), "--results", str(tmp_path / "res"), "-q"]
    one_line_error(capsys, argv, "experiments.0.variants: Dictionary should have at least 1 item")


def test_determinism_needs_at_least_one_job(tmp_path, synthetic_root, capsys, unchanged):
    path = sweep_file(tmp_path)
    unchanged()
    argv = ["determinism", str(path), "--jobs", "0", "--data-root", str(synthetic_root), "--out", str(tmp_path / "o")]
    one_line_error(capsys, argv, "--jobs must be at least 1 (got 0)")


def test_sweep_given_a_directory(tmp_path, capsys, unchanged):
    unchanged()
    one_line_error(capsys, ["sweep", str(tmp_path), "-q"], f"sweep config {tmp_path} is a directory")


@pytest.mark.parametrize("field", ["strategies", "benchmarks"])
def test_empty_grid_is_an_error(field, tmp_path, synthetic_root, capsys, unchanged):
    text = SWEEP.format(strategies="[naive]", extra="")
    text = (
        text.replace("strategies: [naive]", "strategies: []")
        if field == "strategies"
        else text.replace("benchmarks: [split-mnist]", "benchmarks: []")
    )
    (tmp_path / "sweep.yaml").write_text(text)
    unchanged()
    one_line_error(capsys, ["sweep", str(tmp_path / "sweep.yaml"), "--data-root", str(synthetic_root),
                            "--results", str(tmp_path / "res"), "-q"],
                   f"experiments.0.{field}: List should have at least 1 item")  # fmt: skip


def test_experiences_that_cannot_split_the_classes_are_refused_by_the_config():
    from benchmarks.config import ConfigError, make_run_config

    expected = r"split-mnist-task splits 10 classes: n_experiences must divide 10 \(got 3\)"
    with pytest.raises(ConfigError, match=expected):
        make_run_config(benchmark="split-mnist-task", strategy="naive", n_experiences=3)
    assert make_run_config(benchmark="permuted-mnist", strategy="naive", n_experiences=3).n_experiences == 3


def test_huge_memory_is_refused_before_allocating(tmp_path, synthetic_root, capsys, unchanged):
    unchanged()
    one_line_error(
        capsys,
        ["run", "--benchmark", "split-mnist", "--strategy", "replay", "--memory", "1000000000",
         "--data-root", str(synthetic_root), "--results", str(tmp_path / "res")],
        "memory 1000000000 for replay would allocate 3.2 TB", "lower --memory",
    )  # fmt: skip
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_memory_check_counts_concurrent_sweep_runs():
    from benchmarks.config import ConfigError, make_run_config
    from benchmarks.resources import check_memory_fits, planned_bytes

    config = make_run_config(benchmark="split-mnist", strategy="replay", memory=1000)
    need = planned_bytes(config)
    assert need == 1000 * (4 * 784 + 16)  # float32 images plus two int64 labels, by hand
    check_memory_fits([config], available=4 * need)  # half of it fits one run
    with pytest.raises(ConfigError, match="per run with 3 runs at once"):
        check_memory_fits([config], concurrent=3, available=4 * need)
    assert planned_bytes(make_run_config(benchmark="split-mnist", strategy="naive")) == 0


def test_label_out_of_range_names_file_and_value(make_data_root, tmp_path, capsys):
    root = make_data_root(tmp_path / "data")
    labels_path = raw_dir(root) / FILES["train_labels"]
    labels = np.frombuffer(labels_path.read_bytes()[8:], dtype=np.uint8).copy()
    labels[7] = 12
    write_idx(labels_path, labels)
    lines = [f"{hashlib.sha256((raw_dir(root) / n).read_bytes()).hexdigest()}  {n}" for n in FILES.values()]
    (root / "MNIST" / "SHA256SUMS").write_text("\n".join(lines) + "\n")  # checksums match the bad file
    one_line_error(
        capsys,
        ["run", "--benchmark", "permuted-mnist", "--strategy", "naive", "--data-root", str(root),
         "--results", str(tmp_path / "res"), "-q"],
        f"{labels_path}: label 12 at index 7 is out of range 0-9 (1 such labels)",
    )  # fmt: skip


def test_missing_file_is_named(make_data_root, tmp_path, capsys):
    root = make_data_root(tmp_path / "data")
    (raw_dir(root) / FILES["test_labels"]).unlink()
    code = main(["data", "--data-root", str(root), "--no-download"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert f"MNIST incomplete under data root {root}: t10k-labels-idx1-ubyte missing from {raw_dir(root)}" in err


def test_mistyped_data_root_creates_nothing(tmp_path, capsys, monkeypatch):
    import benchmarks.data

    def download_that_creates_then_fails(root):  # what torchvision does without a network
        raw_dir(root).mkdir(parents=True)
        raise OSError("no network")

    monkeypatch.setattr(benchmarks.data, "_try_download", download_that_creates_then_fails)
    code = main(["data", "--data-root", str(tmp_path / "dtaa")])
    assert code == 2 and "download attempt failed: no network" in capsys.readouterr().err
    assert not (tmp_path / "dtaa").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["run", "--benchmark", "split-mnist", "--strategy", "naive", "--lr", "abc"],
            "lr: Input should be a valid number",
        ),
        (["run", "--benchmark", "split-mnist"], "the following arguments are required: --strategy"),
        (["run", "--bench", "split-mnist", "--strategy", "naive"], "the following arguments are required: --benchmark"),
        (["sweep", "x.yaml", "--jobs", "two"], "argument --jobs: invalid int value: 'two'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
    ids=["lr-abc", "missing-required", "abbreviated-flag", "jobs-not-int", "unknown-command"],
)
def test_usage_errors_take_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        code = main(argv)
        raise SystemExit(code)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and expected in err, err


def test_bad_input_is_answered_without_importing_torch(tmp_path):
    """Validation comes first and torch loads lazily, so bad input is answered at once."""
    code = (
        "import sys\n"
        "from benchmarks.cli import main\n"
        "rc = main(['run', '--benchmark', 'split-mnist', '--strategy', 'replayy',"
        f" '--results', {str(tmp_path / 'res')!r}])\n"
        "assert rc == 2, rc\n"
        f"rc = main(['sweep', {str(tmp_path)!r}])\n"
        "assert rc == 2, rc\n"
        "print(json.dumps(sorted(m for m in ('torch', 'avalanche') if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert "unknown strategy 'replayy'" in proc.stderr
