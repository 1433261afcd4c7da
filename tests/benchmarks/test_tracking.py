"""``--log csv|tensorboard|mlflow|wandb``: each tracker, read back with its own library's reader
(TensorBoard's EventAccumulator, MLflow's client), holds the run JSON's values; tracking never
changes the stored result; a missing package or a bad flag is one line, exit code 2, before any run.

Runs are tiny (synthetic MNIST root, batch 8: 5 experiences of about 8 iterations), with the loss
logged every 5 iterations instead of every 50 so that several losses are logged."""

from __future__ import annotations

import csv
import importlib.util
import json
import pickle

import pytest

from benchmarks.cli import main
from benchmarks.config import make_run_config
from benchmarks.runner import run_and_store
from benchmarks.store import result_path
from benchmarks.sweep import RunJob, Serial, sweep
from benchmarks.tracking import Tracking
from benchmarks.tracking.tracker import run_key

EVERY = 5
DERIVED = ("final_accuracy", "average_forgetting", "backward_transfer", "learning_accuracy")


def config(synthetic_root, seed=0, strategy="replay"):
    return make_run_config(
        benchmark="split-mnist", strategy=strategy, seed=seed, batch_size=8, data_root=str(synthetic_root)
    )


def tracked(tmp_path, synthetic_root, synthetic_mnist, backends, experiment="adhoc"):
    results = tmp_path / "results"
    tracking = Tracking(tuple(backends), results, experiment, loss_every=EVERY)
    cfg = config(synthetic_root)
    record = run_and_store(cfg, results, progress=False, data=synthetic_mnist, tracking=tracking)
    return results, cfg, record


@pytest.fixture(scope="module")
def csv_and_tensorboard(tmp_path_factory, synthetic_root, synthetic_mnist):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    return tracked(tmp_path_factory.mktemp("tb"), synthetic_root, synthetic_mnist, ["csv", "tensorboard"])


def test_tracking_changes_neither_the_result_nor_its_place(
    csv_and_tensorboard, synthetic_root, synthetic_mnist, tmp_path
):
    results, cfg, record = csv_and_tensorboard
    plain = run_and_store(cfg, tmp_path, progress=False, data=synthetic_mnist)
    assert result_path(results, cfg).relative_to(results) == result_path(tmp_path, cfg).relative_to(tmp_path)
    assert plain["config"] == record["config"] and plain["config_hash"] == record["config_hash"]
    assert plain["accuracy_matrix"] == record["accuracy_matrix"]
    assert {k: plain["metrics"][k] for k in DERIVED} == {k: record["metrics"][k] for k in DERIVED}
    assert json.loads(result_path(results, cfg).read_text())["accuracy_matrix"] == record["accuracy_matrix"]


def test_csv_log_holds_losses_rows_and_final_metrics(csv_and_tensorboard):
    results, cfg, record = csv_and_tensorboard
    path = results / "logs" / f"{run_key(cfg)}.csv"
    lines = list(csv.DictReader(path.open()))
    losses = [line for line in lines if line["metric"] == "train/loss"]
    assert [int(line["step"]) for line in losses] == list(range(1, int(lines[-1]["step"]) + 1, EVERY))
    assert all(float(line["value"]) > 0 for line in losses)
    for i, row in enumerate(record["accuracy_matrix"], start=1):
        logged = {
            line["metric"]: float(line["value"])
            for line in lines
            if line["experience"] == str(i) and line["metric"].startswith("accuracy/")
        }
        assert logged == {f"accuracy/exp{j}": a for j, a in enumerate(row, start=1)}
    final = {
        line["metric"].removeprefix("final/"): line["value"] for line in lines if line["metric"].startswith("final/")
    }
    assert float(final["final_accuracy"]) == record["metrics"]["final_accuracy"]
    assert int(final["memory_bytes"]) == record["metrics"]["memory_bytes"] > 0


def test_a_rerun_replaces_the_tensorboard_events(tmp_path, synthetic_root):
    from benchmarks.tracking.sinks import TensorBoardSink

    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    tracking, cfg = Tracking(("tensorboard",), tmp_path, "adhoc"), config(synthetic_root)
    for _ in range(2):
        sink = TensorBoardSink(tracking, cfg, run_key(cfg), {})
        sink.loss(1, 0.5)
        sink.close(ok=True)
    assert len(list((tmp_path / "tensorboard" / run_key(cfg)).glob("events.out.tfevents.*"))) == 1


def test_tensorboard_events_read_back_with_the_event_accumulator(csv_and_tensorboard):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    results, cfg, record = csv_and_tensorboard
    events = EventAccumulator(str(results / "tensorboard" / run_key(cfg)))
    events.Reload()
    matrix = record["accuracy_matrix"]
    for j in range(1, len(matrix[0]) + 1):
        logged = [(e.step, e.value) for e in events.Scalars(f"accuracy/exp{j}")]
        assert [s for s, _ in logged] == list(range(1, len(matrix) + 1))
        assert [v for _, v in logged] == pytest.approx([row[j - 1] for row in matrix], abs=1e-6)  # float32
    for name in ("final_accuracy", "average_forgetting", "memory_bytes"):
        (event,) = events.Scalars(f"final/{name}")
        assert event.value == pytest.approx(record["metrics"][name], rel=1e-6)
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses][:2] == [1, 1 + EVERY] and len(losses) >= 3
    assert "config/text_summary" in events.Tags()["tensors"]  # the config as text
    # the config as hparams, read with TensorBoard's own hparams protobuf
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["lr"].number_value == cfg.lr and hparams["strategy"].string_value == "replay"
    assert hparams["config_hash"].string_value == record["config_hash"]


@pytest.fixture(scope="module")
def mlflow_sweep(tmp_path_factory, synthetic_root, synthetic_mnist):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    results = tmp_path_factory.mktemp("mlflow") / "results"
    tracking = Tracking(("mlflow",), results, "tiny-sweep", loss_every=EVERY)
    configs = [config(synthetic_root, seed) for seed in (0, 1)]
    report = sweep(configs, results, Serial(), progress=False, log=lambda _: None, tracking=tracking)
    assert not report.failed, report.failed
    return results, configs, report.done


def test_a_sweep_is_an_mlflow_experiment_with_one_run_per_grid_point(mlflow_sweep):
    from mlflow.tracking import MlflowClient

    results, configs, records = mlflow_sweep
    client = MlflowClient((results / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("tiny-sweep")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(configs) == 2
    by_seed = {run.data.tags["seed"]: run for run in runs}
    for cfg, record in zip(configs, records):
        run = by_seed[str(cfg.seed)]
        assert run.info.status == "FINISHED" and run.info.run_name == run_key(cfg)
        assert run.data.tags["config_hash"] == record["config_hash"]
        assert run.data.tags["git_commit"] == str(record["git_commit"])
        assert run.data.params["lr"] == str(cfg.lr) and run.data.params["strategy"] == "replay"
        for name in ("final_accuracy", "memory_bytes", "average_forgetting"):
            assert run.data.metrics[name] == pytest.approx(record["metrics"][name])
        matrix = record["accuracy_matrix"]
        for j in range(1, len(matrix[0]) + 1):
            history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, f"accuracy/exp{j}"))
            assert history == [(i, pytest.approx(row[j - 1])) for i, row in enumerate(matrix, start=1)]
        losses = client.get_metric_history(run.info.run_id, "train/loss")
        assert sorted(m.step for m in losses)[:2] == [1, 1 + EVERY]


def test_a_resumed_sweep_logs_only_the_grid_points_it_runs(tmp_path, synthetic_root):
    """Reused results log nothing; a grid point run again (its result gone) is a second MLflow run
    under the same name: one MLflow run per run executed, as the README says."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    results = tmp_path / "results"
    tracking = Tracking(("mlflow",), results, "resumed", loss_every=EVERY)

    def sweep_seeds(*seeds):
        configs = [config(synthetic_root, s) for s in seeds]
        report = sweep(configs, results, Serial(), progress=False, log=lambda _: None, tracking=tracking)
        assert not report.failed, report.failed
        return [c.seed for c in report.ran]

    def mlflow_runs() -> list[tuple[str, str]]:
        client = MlflowClient((results / "mlruns").resolve().as_uri())
        runs = client.search_runs([client.get_experiment_by_name("resumed").experiment_id])
        return sorted((run.data.tags["seed"], run.info.status) for run in runs)

    assert sweep_seeds(0, 1) == [0, 1] and mlflow_runs() == [("0", "FINISHED"), ("1", "FINISHED")]
    assert sweep_seeds(0, 1, 2) == [2]  # 0 and 1 reused
    assert mlflow_runs() == [("0", "FINISHED"), ("1", "FINISHED"), ("2", "FINISHED")]
    result_path(results, config(synthetic_root, 0)).unlink()
    assert sweep_seeds(0, 1, 2) == [0]
    assert mlflow_runs() == [("0", "FINISHED"), ("0", "FINISHED"), ("1", "FINISHED"), ("2", "FINISHED")]


def test_wandb_writes_an_offline_run(tmp_path, synthetic_root, synthetic_mnist):
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    results, cfg, record = tracked(tmp_path, synthetic_root, synthetic_mnist, ["wandb"])
    (run_file,) = (results / "wandb").glob("offline-run-*/run-*.wandb")
    # wandb has no Python reader of its offline files (wandb sync uploads them); the names and
    # the final accuracy must be in the file's records
    data = run_file.read_bytes()
    assert run_key(cfg).encode() in data and b"accuracy/exp5" in data and b"memory_bytes" in data
    assert repr(record["metrics"]["final_accuracy"]).encode() in data


def test_the_sweep_job_with_tracking_pickles_for_the_workers(tmp_path):
    job = RunJob(tmp_path, Tracking(("csv",), tmp_path, "s"), "cpu")
    assert pickle.loads(pickle.dumps(job)) == job


# ----------------------------------------------------------------------------- bad input


def test_a_missing_package_is_one_line_naming_the_extra(tmp_path, synthetic_root, run_argv, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    results = tmp_path / "res"
    assert main(run_argv(synthetic_root, results, "--log", "csv", "--log", "mlflow")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install epinet-bench[mlflow]" in err and "Traceback" not in err
    assert not results.exists()  # checked before anything is written


def test_tracking_uri_without_mlflow_is_one_line(tmp_path, synthetic_root, run_argv, capsys):
    results = tmp_path / "res"
    assert main(run_argv(synthetic_root, results, "--tracking-uri", "http://localhost:5000")) == 2
    err = capsys.readouterr().err.strip()
    assert err == "epinet-bench: error: --tracking-uri applies to --log mlflow only"
    assert not results.exists()


def test_an_unknown_tracker_is_a_usage_error(tmp_path, synthetic_root, run_argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(run_argv(synthetic_root, tmp_path / "res", "--log", "neptune"))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "invalid choice: 'neptune'" in err and err.count("\n") == 0


def test_sweep_takes_the_same_flags():
    from benchmarks.cli import build_parser

    args = build_parser().parse_args(["sweep", "x.yaml", "--log", "mlflow", "--log", "csv", "--tracking-uri", "u"])
    assert args.log == ["mlflow", "csv"] and args.tracking_uri == "u"
    assert build_parser().parse_args(["run", "--benchmark", "b", "--strategy", "s"]).log is None
