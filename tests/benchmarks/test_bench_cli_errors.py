"""Every bad input ends in one clear message and exit code 2 before any data is loaded or any
training starts; no traceback reaches the user."""

import pytest

import benchmarks.data
import benchmarks.runner
import benchmarks.sweep
from benchmarks.cli import main
from benchmarks.scenarios import BENCHMARKS


@pytest.fixture
def no_work(forbid):
    """Loading data, training or sweeping fails the test: errors must come first."""
    for module, name in (
        (benchmarks.data, "load_mnist"),
        (benchmarks.runner, "run"),
        (benchmarks.runner, "run_and_store"),
        (benchmarks.sweep, "sweep"),
    ):
        forbid(module, name, "work started before the input was rejected")


def fails_with(capsys, argv, *expected):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    err = captured.err
    assert err.startswith("epinet-bench: error: ")
    assert err.count("epinet-bench: error:") == 1
    assert "Traceback" not in err
    for text in expected:
        assert text in err
    return err


@pytest.fixture
def run_args(run_argv, synthetic_root, tmp_path):
    def args(*extra, strategy="naive", benchmark="split-mnist"):
        return run_argv(synthetic_root, tmp_path / "res", *extra, strategy=strategy, benchmark=benchmark)

    return args


def test_unknown_benchmark(no_work, run_args, capsys):
    fails_with(
        capsys,
        run_args(benchmark="cifar-10"),
        "benchmark: unknown benchmark 'cifar-10'; known: " + ", ".join(BENCHMARKS),
    )


def test_unknown_strategy_lists_known(no_work, run_args, capsys):
    fails_with(
        capsys,
        run_args(strategy="not-a-strategy"),
        "strategy: unknown strategy 'not-a-strategy'; known: ",
        "epinet",
        "ewc",
        "joint",
        "naive",
        "replay",
    )


@pytest.mark.parametrize(
    "flag, key",
    [
        ("--memory", "memory"),
        ("--epochs", "epochs"),
        ("--batch-size", "batch_size"),
        ("--eval-batch-size", "eval_batch_size"),
        ("--train-per-experience", "train_per_experience"),
    ],
)
@pytest.mark.parametrize("value", ["0", "-3"])
def test_non_positive_sizes(no_work, run_args, capsys, flag, key, value):
    fails_with(capsys, run_args(flag, value), f"arguments: {key}: Input should be greater than 0")


def test_unknown_optimizer_and_backbone(no_work, run_args, capsys):
    fails_with(capsys, run_args("--optimizer", "rmsprop"), "optimizer: Input should be 'adam' or 'sgd'")
    fails_with(capsys, run_args("--backbone", "resnet"), "backbone: unknown backbone 'resnet'; known: cnn, mlp")


def test_top_k_larger_than_capacity(no_work, run_args, capsys):
    fails_with(
        capsys,
        run_args("--option", "top_k=600", "--memory", "500", strategy="epinet"),
        "strategy_options for 'epinet'",
        "top_k (k=600) must not exceed capacity (500)",
    )


def test_capacity_is_not_a_strategy_option(no_work, run_args, capsys):
    fails_with(
        capsys, run_args("--option", "capacity=10", strategy="epinet"), "set `memory`, not strategy_options.capacity"
    )


@pytest.mark.parametrize("strategy", ["naive", "ewc", "epinet"])
def test_unknown_strategy_option(no_work, run_args, capsys, strategy):
    fails_with(
        capsys,
        run_args("--option", "ewc_lamda=10", strategy=strategy),
        f"strategy_options for '{strategy}'",
        "ewc_lamda",
    )


def test_bad_option_value(no_work, run_args, capsys):
    fails_with(
        capsys,
        run_args("--option", "ewc_lambda=-1", strategy="ewc"),
        "strategy_options for 'ewc'",
        "ewc_lambda",
        "greater than 0",
    )


def test_option_without_value(no_work, run_args, capsys):
    fails_with(capsys, run_args("--option", "top_k", strategy="epinet"), "--option expects KEY=VALUE, got 'top_k'")


def test_unwritable_results_directory(no_work, run_argv, synthetic_root, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("tests run as root, so a path under a regular file is what cannot be written")
    results = blocker / "results"
    argv = run_argv(synthetic_root, results)
    fails_with(capsys, argv, f"results directory {results} is not writable")
    sweep_yaml = tmp_path / "ok.yaml"
    sweep_yaml.write_text(VALID_SWEEP)
    fails_with(
        capsys,
        ["sweep", str(sweep_yaml), "--data-root", str(synthetic_root), "--results", str(results), "-q"],
        f"results directory {results} is not writable",
    )


VALID_SWEEP = """\
name: tiny
seeds: [0]
experiments:
  - name: main
    benchmarks: [split-mnist]
    strategies: [naive]
"""


@pytest.fixture
def sweep_with(synthetic_root, tmp_path, capsys):
    def check(text, *expected, extra=()):
        path = tmp_path / "sweep.yaml"
        path.write_text(text)
        return fails_with(
            capsys,
            ["sweep", str(path), "--data-root", str(synthetic_root), "--results", str(tmp_path / "res"), "-q", *extra],
            *expected,
        )

    return check


def test_sweep_yaml_syntax_error(no_work, sweep_with, tmp_path):
    err = sweep_with("name: tiny\nseeds: [0, 1\nexperiments: []\n", f"cannot parse {tmp_path / 'sweep.yaml'}")
    assert "line" in err  # YAML's own position of the problem


def test_sweep_yaml_unknown_key_is_named(no_work, sweep_with):
    sweep_with(
        VALID_SWEEP.replace("strategies:", "stratgies:"), "experiments.0.stratgies: Extra inputs are not permitted"
    )


def test_sweep_yaml_unknown_top_level_key(no_work, sweep_with):
    sweep_with(VALID_SWEEP + "seed: 3\n", "sweep.yaml: seed: Extra inputs are not permitted")


def test_sweep_yaml_invalid_run_field_names_experiment(no_work, sweep_with):
    sweep_with(
        VALID_SWEEP.replace("seeds: [0]", "seeds: [0]\ndefaults: {memory: 0}"),
        "tiny: experiment 'main', variant 'default': memory: Input should be greater than 0",
    )


def test_sweep_yaml_unknown_strategy(no_work, sweep_with):
    sweep_with(VALID_SWEEP.replace("[naive]", "[naive, not-a-strategy]"), "unknown strategy 'not-a-strategy'; known: ")


def test_sweep_yaml_not_a_mapping(no_work, sweep_with):
    sweep_with("- just\n- a list\n", "expected a mapping at the top level, got list")


def test_sweep_missing_config_file(no_work, tmp_path, capsys):
    fails_with(
        capsys, ["sweep", str(tmp_path / "nope.yaml"), "-q"], f"sweep config {tmp_path / 'nope.yaml'} does not exist"
    )


def test_sweep_jobs_must_be_positive(no_work, sweep_with):
    sweep_with(VALID_SWEEP, "--jobs must be at least 1 (got 0)", extra=("--jobs", "0"))


def test_interrupted_run_exits_130_and_writes_nothing(run_args, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmarks.runner, "run", interrupted)
    code = main(run_args())
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted; finished runs are saved and a rerun resumes from them" in err and "Traceback" not in err
    assert list((tmp_path / "res").rglob("*")) == []
