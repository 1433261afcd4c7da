"""Run JSONs on disk (atomic writes, validation on read) and sweeps that resume after an
interruption: only missing or corrupt runs are run again, and nothing half-written survives."""

import json
import os

import pytest

import benchmarks.runner
import benchmarks.store as store
from benchmarks import metrics
from benchmarks.config import SweepConfig, make_run_config
from benchmarks.store import (
    SCHEMA_VERSION,
    CorruptResult,
    iter_results,
    read_result,
    result_path,
    valid_result_for,
    write_atomic,
)
from benchmarks.sweep import Serial, sweep


def make_record(config, matrix=((0.9, 0.1), (0.5, 0.8))) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "config": config.model_dump(),
        "config_hash": config.config_hash(),
        "metrics": {
            **metrics.summarise(matrix),
            "train_seconds": 1.0,
            "eval_seconds": 0.5,
            "peak_rss_bytes": 1 << 20,
            "parameter_count": 10,
            "memory_bytes": 0,
        },
        "accuracy_matrix": [list(row) for row in matrix],
        "experience_seconds": [0.5] * len(matrix),
        "versions": {"python": "3.11"},
        "git_commit": None,
        "created": "2025-01-01T00:00:00+00:00",
    }


CONFIG = make_run_config(benchmark="split-mnist", strategy="naive", seed=3, n_experiences=2)


def leftovers(directory):
    """Temporary files a write could leave behind."""
    return [p for p in directory.rglob("*") if p.is_file() and (p.name.startswith(".") or p.suffix == ".tmp")]


# ----------------------------------------------------------------------------- atomic writes


def test_write_atomic_writes_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "runs" / "a" / "seed0.json"
    write_atomic(path, {"x": 1})
    write_atomic(path, {"x": 2})  # replaces
    assert json.loads(path.read_text()) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["seed0.json"]


def test_write_interrupted_before_replace_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "seed0.json"
    write_atomic(path, {"old": True})

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(store.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert leftovers(tmp_path) == []


def test_write_failing_mid_dump_leaves_nothing(tmp_path):
    path = tmp_path / "seed0.json"
    with pytest.raises(TypeError):
        write_atomic(path, {"ok": 1, "not json": object()})
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- validation on read


def test_read_result_accepts_a_valid_record(tmp_path):
    path = result_path(tmp_path, CONFIG)
    assert path == tmp_path / "runs" / "split-mnist" / "naive" / CONFIG.config_hash() / "seed3.json"
    write_atomic(path, make_record(CONFIG))
    result = read_result(path)
    assert result.accuracy_matrix == [[0.9, 0.1], [0.5, 0.8]]
    assert valid_result_for(path, CONFIG)[1] is None


def _drop(key, sub=None):
    def edit(record):
        del (record[sub] if sub else record)[key]

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.update(schema_version=2), "schema version 2, this harness reads 1"),
        (lambda r: r.pop("schema_version"), "schema version None"),
        (_drop("metrics"), ": metrics: Field required"),
        (_drop("final_accuracy", "metrics"), ": metrics.final_accuracy: Field required"),
        (
            lambda r: r.update(accuracy_matrix=[[0.9, 0.1], [0.5]]),
            "accuracy matrix is 2 ragged rows, its config needs 2x2",
        ),
        (lambda r: r.update(accuracy_matrix=[]), "accuracy matrix is empty"),
    ],
    ids=["schema-version", "no-schema-version", "no-metrics", "no-final-accuracy", "ragged", "empty"],
)
def test_read_result_rejects_bad_records(tmp_path, edit, message):
    record = make_record(CONFIG)
    edit(record)
    path = tmp_path / "seed3.json"
    path.write_text(json.dumps(record))
    with pytest.raises(CorruptResult) as err:
        read_result(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_read_result_rejects_truncated_and_non_object_json(tmp_path):
    path = tmp_path / "seed3.json"
    text = json.dumps(make_record(CONFIG))
    path.write_text(text[: len(text) // 2])
    with pytest.raises(CorruptResult, match="unreadable JSON"):
        read_result(path)
    path.write_text("[1, 2]")
    with pytest.raises(CorruptResult, match="not a JSON object"):
        read_result(path)


def test_result_of_another_configuration_is_not_trusted(tmp_path):
    path = result_path(tmp_path, CONFIG)
    other = make_run_config(benchmark="split-mnist", strategy="naive", seed=3, epochs=2, n_experiences=2)
    write_atomic(path, make_record(other))
    result, problem = valid_result_for(path, CONFIG)
    assert result is None and "belongs to another configuration" in problem
    assert valid_result_for(tmp_path / "missing.json", CONFIG) == (None, None)


def test_iter_results_reports_corrupt_files(tmp_path):
    good = result_path(tmp_path, CONFIG)
    write_atomic(good, make_record(CONFIG))
    bad = good.with_name("seed4.json")
    bad.write_text("{")
    found = dict(iter_results(tmp_path))
    assert set(found) == {good, bad}
    assert isinstance(found[bad], CorruptResult) and not isinstance(found[good], CorruptResult)


# ----------------------------------------------------------------------------- sweeps that resume

SWEEP = {
    "name": "resume",
    "seeds": [0, 1],
    "defaults": {"batch_size": 32, "eval_batch_size": 500, "memory": 20, "n_experiences": 2},
    "experiments": [{"name": "main", "benchmarks": ["split-mnist"], "strategies": ["naive", "replay"]}],
}


def ids(configs):
    return sorted((c.strategy, c.seed) for c in configs)


@pytest.fixture
def configs(synthetic_root):
    runs = SweepConfig.model_validate(SWEEP).runs(data_root=str(synthetic_root))
    assert ids(runs) == [("naive", 0), ("naive", 1), ("replay", 0), ("replay", 1)]
    return runs


def run_sweep(configs, results):
    log = []
    report = sweep(configs, results, Serial(), progress=False, log=log.append, warn=log.append)
    return report, log


def test_sweep_reruns_exactly_missing_and_corrupt_runs(configs, tmp_path):
    results = tmp_path / "results"
    report, _ = run_sweep(configs, results)
    assert ids(report.ran) == ids(configs) and report.skipped == [] and report.failed == []
    paths = {(c.strategy, c.seed): result_path(results, c) for c in configs}
    assert all(read_result(p) for p in paths.values())
    before = {key: p.read_bytes() for key, p in paths.items()}

    # Simulated interruption: one result never written, another cut off half-way.
    paths["naive", 1].unlink()
    corrupt = paths["replay", 0]
    corrupt.write_bytes(corrupt.read_bytes()[:200])

    report, log = run_sweep(configs, results)
    assert ids(report.ran) == [("naive", 1), ("replay", 0)]
    assert ids(report.skipped) == [("naive", 0), ("replay", 1)]
    assert report.failed == []
    assert len(report.reruns) == 1 and report.reruns[0].startswith(f"{corrupt}: unreadable JSON")
    assert report.reruns[0].endswith(", rerunning") and report.reruns[0] in log
    assert "4 runs: 2 already done, 2 to run" in log
    assert len(report.done) == 4
    for key, path in paths.items():
        result = read_result(path)
        assert (result.config["strategy"], result.config["seed"]) == key
        if key in {("naive", 0), ("replay", 1)}:
            assert path.read_bytes() == before[key]  # reused, not rewritten
    assert leftovers(results) == []

    report, _ = run_sweep(configs, results)
    assert report.ran == [] and ids(report.skipped) == ids(configs)


def test_interrupted_sweep_keeps_finished_runs_and_resumes(configs, tmp_path, monkeypatch):
    results = tmp_path / "results"
    real_run, calls = benchmarks.runner.run, []

    def interrupted_on_second(config, **kwargs):
        calls.append(config)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(config, **kwargs)

    monkeypatch.setattr(benchmarks.runner, "run", interrupted_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(configs, results)
    finished = calls[0]
    (written,) = results.rglob("seed*.json")
    assert written == result_path(results, finished)
    assert read_result(written).config["seed"] == finished.seed
    assert leftovers(results) == []

    report, _ = run_sweep(configs, results)  # calls 3.. go through
    assert ids(report.skipped) == [(finished.strategy, finished.seed)]
    assert len(report.ran) == 3 and report.reruns == [] and report.failed == []
    assert all(valid_result_for(result_path(results, c), c)[0] for c in configs)


def test_failing_run_is_reported_and_the_others_go_on(configs, tmp_path, monkeypatch):
    results = tmp_path / "results"
    real_run, calls = benchmarks.runner.run, []

    def fails_on_second(config, **kwargs):
        calls.append(config)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real_run(config, **kwargs)

    monkeypatch.setattr(benchmarks.runner, "run", fails_on_second)
    report, log = run_sweep(configs, results)
    assert len(report.ran) == 3
    assert [(c.strategy, c.seed) for c, _ in report.failed] == [(calls[1].strategy, calls[1].seed)]
    assert report.failed[0][1] == "RuntimeError: out of memory"
    assert any(line.startswith("FAILED ") and "out of memory" in line for line in log)
    assert not result_path(results, calls[1]).exists()
    assert len(list(results.rglob("seed*.json"))) == 3
    assert leftovers(results) == []


def test_sweep_checks_results_dir_before_running(configs, tmp_path, forbid):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    forbid(benchmarks.runner, "run", "ran although results cannot be written")
    with pytest.raises(PermissionError, match="is not writable"):
        run_sweep(configs, blocker / "results")


def test_ensure_writable_leaves_no_probe_file(tmp_path):
    store.ensure_writable(tmp_path / "new" / "results")
    assert list((tmp_path / "new" / "results").iterdir()) == []
    assert os.access(tmp_path / "new" / "results", os.W_OK)


def test_cli_sweep_reuses_finished_runs(synthetic_root, tmp_path, capsys):
    from benchmarks.cli import main

    config = tmp_path / "one.yaml"
    config.write_text(
        "name: one\nseeds: [0]\ndefaults: {batch_size: 32, n_experiences: 2}\n"
        "experiments:\n  - {name: main, benchmarks: [split-mnist], strategies: [naive]}\n"
    )
    argv = ["sweep", str(config), "--data-root", str(synthetic_root), "--results", str(tmp_path / "res"), "-q"]
    assert main(argv) == 0
    assert f"1 ran, 0 reused, 0 failed; results in {tmp_path / 'res'}/runs" in capsys.readouterr().out
    (path,) = (tmp_path / "res").rglob("seed0.json")
    first = path.read_bytes()
    assert main(argv) == 0
    assert "0 ran, 1 reused, 0 failed" in capsys.readouterr().out
    assert path.read_bytes() == first
