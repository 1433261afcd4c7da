"""A stored result is trusted only if it re-derives: metrics from its matrix, the matrix's shape
from its config, the config from its hash, the schema from today's. A result that fails is
named on stderr (also with -q), moved aside (kept) and rerun by ``sweep``; ``report`` skips it
with the same words. Results made by another code version are reused, said, and rerun on
request."""

from __future__ import annotations

import json

import pytest

from benchmarks.cli import main
from benchmarks.store import CorruptResult, read_result

SWEEP = """
name: trust
seeds: [0]
defaults: {batch_size: 32, n_experiences: 2}
experiments:
  - {name: main, benchmarks: [split-mnist], strategies: [naive]}
"""


@pytest.fixture
def stored(tmp_path, synthetic_root, capsys):
    """A real run on tiny data, stored where the sweep below looks for it (made in-process by
    ``run``, the sweep's own workers being slower to start): (the sweep's argv, the path)."""
    config = tmp_path / "trust.yaml"
    config.write_text(SWEEP)
    results = str(tmp_path / "res")
    run_argv = ["run", "--benchmark", "split-mnist", "--strategy", "naive", "--batch-size", "32",
                "--n-experiences", "2", "--experiment", "main", "--data-root", str(synthetic_root),
                "--results", results, "-q"]  # fmt: skip
    assert main(run_argv) == 0
    capsys.readouterr()
    (path,) = (tmp_path / "res").rglob("seed0.json")
    argv = ["sweep", str(config), "--data-root", str(synthetic_root), "--results", results, "-q"]
    return argv, path


def tamper(path, edit):
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    return path.read_text()


def _set_metric(name, value):
    return lambda r: r["metrics"].update({name: value})


def _shift_metric(name, by):
    return lambda r: r["metrics"].update({name: r["metrics"][name] + by})


TAMPERING = {
    "final-accuracy-contradicts-R": (
        _set_metric("final_accuracy", 0.353),
        "final_accuracy is 0.353, but its accuracy matrix gives",
    ),
    "forgetting-contradicts-R": (_shift_metric("average_forgetting", 0.25), "average_forgetting is "),
    "truncated-R": (
        lambda r: r.update(accuracy_matrix=r["accuracy_matrix"][:1]),
        "accuracy matrix is 1x2, its config needs 2x2",
    ),
    "R-for-another-benchmark": (
        lambda r: r.update(accuracy_matrix=[row + [0.5] for row in r["accuracy_matrix"]]),
        "accuracy matrix is 2x3, its config needs 2x2",
    ),
    "wrong-hash": (
        lambda r: r.update(config_hash="0123456789ab"),
        "config hash '0123456789ab' does not match its config",
    ),
    "config-edited-under-its-hash": (lambda r: r["config"].update(lr=0.5), "does not match its config"),
    "old-schema": (lambda r: r.update(schema_version=0), "schema version 0, this harness reads 1"),
    "strategy-renamed": (lambda r: r["config"].update(strategy="lwf"), "does not match its config"),
    "invalid-config": (lambda r: r["config"].update(epochs=0), "stored config: epochs: Input should be greater than 0"),
    "R-edited-under-its-metrics": (
        lambda r: r["accuracy_matrix"][-1].__setitem__(0, r["accuracy_matrix"][-1][0] / 2 + 0.01),
        "final_accuracy is ",
    ),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_tampered_result_is_rejected_with_its_reason(stored, case):
    _, path = stored
    edit, reason = TAMPERING[case]
    tamper(path, edit)
    with pytest.raises(CorruptResult) as err:
        read_result(path)
    assert str(err.value).startswith(f"{path}: ") and reason in str(err.value)


@pytest.mark.parametrize("case", ["final-accuracy-contradicts-R", "truncated-R", "wrong-hash"])
def test_sweep_names_moves_aside_and_reruns_a_tampered_result_even_when_quiet(stored, case, capsys):
    argv, path = stored
    edit, reason = TAMPERING[case]
    tampered = tamper(path, edit)
    assert main(argv) == 0
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith(f"{path}: ")]
    assert reason in line and line.endswith("rerunning")
    (aside,) = path.parent.glob("seed0.json.corrupt-*")
    assert aside.read_text() == tampered  # kept as it was, never overwritten
    assert aside.name in line
    read_result(path)  # the rerun is valid
    assert main(argv) == 0  # and trusted: nothing more to say or run
    assert capsys.readouterr().err == ""


def test_report_skips_a_tampered_result_with_the_same_words(stored, capsys):
    from benchmarks.report import report

    _, path = stored
    tamper(path, TAMPERING["final-accuracy-contradicts-R"][0])
    lines = []
    report(path.parents[4], figures=False, out=lambda *a: None, log=lines.append)
    assert any(f"{path}: final_accuracy is 0.353, but its accuracy matrix gives" in line for line in lines), lines


def test_results_of_another_code_version_are_reused_said_and_rerun_on_request(stored, capsys):
    argv, path = stored
    tamper(path, lambda r: r.update(git_commit="0" * 40, git_dirty=False))
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "1 reused results were made by other code versions than this one" in captured.err
    assert "0000000 (1); --rerun-stale reruns them" in captured.err
    assert "0 ran, 1 reused" in captured.out

    assert main([*argv, "--rerun-stale"]) == 0
    captured = capsys.readouterr()
    assert "1 ran, 0 reused" in captured.out
    assert "made by code version 0000000" in captured.err
    (aside,) = path.parent.glob("seed0.json.stale-*")
    assert json.loads(aside.read_text())["git_commit"] == "0" * 40
    assert json.loads(path.read_text())["git_commit"] != "0" * 40


def test_every_result_records_threads_cpu_and_code_version(stored):
    from benchmarks.config import DEFAULT_THREADS

    _, path = stored
    record = json.loads(path.read_text())
    assert record["machine"]["torch_threads"] == DEFAULT_THREADS
    assert record["machine"]["cpu"]
    assert "git_commit" in record and isinstance(record["git_dirty"], (bool, type(None)))


def test_run_uses_the_same_torch_threads_as_sweep_workers(tmp_path, synthetic_root, capsys):
    import torch

    from benchmarks.config import DEFAULT_THREADS

    torch.set_num_threads(2)  # as an interactive session would have
    argv = ["run", "--benchmark", "split-mnist", "--strategy", "naive", "--n-experiences", "2", "--batch-size", "32",
            "--data-root", str(synthetic_root), "--results", str(tmp_path / "res"), "-q"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    (path,) = (tmp_path / "res").rglob("seed0.json")
    assert json.loads(path.read_text())["machine"]["torch_threads"] == DEFAULT_THREADS
