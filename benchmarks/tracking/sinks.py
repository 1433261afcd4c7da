"""One writer per tracking backend, each through the backend's own client library: ``csv`` (the
standard library), ``tensorboard`` (torch's SummaryWriter), ``mlflow`` (MlflowClient), ``wandb``
(``wandb.init`` offline). Each takes the same calls from ``tracker.Tracker``:

* ``loss(step, value)``                 training loss at iteration ``step`` (counted over the whole run)
* ``row(experience, step, accuracies)`` the accuracy-matrix row after training experience ``experience`` (1-based)
* ``finish(experience, step, metrics)`` the run's final metrics (memory_bytes among them)
* ``close(ok)``                         flush and close; ``ok`` False when the run failed

The client libraries are imported when a writer is made: they are optional (``--log`` checks
them before any run starts).
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from benchmarks.config import RunConfig
from benchmarks.tracking import Tracking


def flat_params(config: dict) -> dict[str, str | int | float | bool]:
    """The resolved config as flat scalar params: ``strategy_options.top_k``; None as "None"."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in flat_params(value).items()})
        else:
            flat[key] = value if isinstance(value, str | int | float | bool) else str(value)
    return flat


def accuracy_names(accuracies: list[float]) -> dict[str, float]:
    """``accuracy/exp1`` ... : accuracy on each evaluation experience (1-based, like the report's figures)."""
    return {f"accuracy/exp{j}": float(a) for j, a in enumerate(accuracies, start=1)}


class CsvSink:
    """A plain long-format log: step, experience, metric, value; one line per value."""

    def __init__(self, tracking: Tracking, config: RunConfig, key: str, tags: dict[str, str]):
        self.path = tracking.results_dir / "logs" / f"{key}.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "w", newline="")  # open for the whole run; close() closes it
        self.writer = csv.writer(self.file)
        self.writer.writerow(["step", "experience", "metric", "value"])
        self.experience = 1

    def loss(self, step: int, value: float) -> None:
        self.writer.writerow([step, self.experience, "train/loss", value])

    def row(self, experience: int, step: int, accuracies: list[float]) -> None:
        self.writer.writerows([step, experience, name, a] for name, a in accuracy_names(accuracies).items())
        self.experience = experience + 1
        self.file.flush()  # a long run's log can be watched (tail -f) experience by experience

    def finish(self, experience: int, step: int, metrics: dict) -> None:
        self.writer.writerows([step, experience, f"final/{k}", v] for k, v in metrics.items())

    def close(self, ok: bool) -> None:
        self.file.close()


class TensorBoardSink:
    """Event files under ``tensorboard/<key>/``: the loss against iterations, accuracies and final
    metrics against training experiences, the config as hparams and as text."""

    def __init__(self, tracking: Tracking, config: RunConfig, key: str, tags: dict[str, str]):
        from torch.utils.tensorboard import SummaryWriter

        self.params = {**flat_params(config.model_dump()), **tags}
        log_dir = tracking.results_dir / "tensorboard" / key
        # a rerun replaces the run's events, as it replaces its JSON (TensorBoard would show both)
        for old in log_dir.glob("events.out.tfevents.*"):
            old.unlink()
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.writer.add_text("config", "    " + json.dumps(self.params, indent=2).replace("\n", "\n    "))

    def loss(self, step: int, value: float) -> None:
        self.writer.add_scalar("train/loss", value, step)

    def row(self, experience: int, step: int, accuracies: list[float]) -> None:
        for name, a in accuracy_names(accuracies).items():
            self.writer.add_scalar(name, a, experience)

    def finish(self, experience: int, step: int, metrics: dict) -> None:
        finite = {k: float(v) for k, v in metrics.items() if v is not None}
        for name, value in finite.items():
            self.writer.add_scalar(f"final/{name}", value, experience)
        # run_name ".": the hparams go into this run's own folder, not a new timestamped one
        self.writer.add_hparams(self.params, {f"hparam/{k}": v for k, v in finite.items()}, run_name=".")

    def close(self, ok: bool) -> None:
        self.writer.close()


class MlflowSink:
    """One MLflow run, in the experiment named after the sweep; metrics are sent in batches, once
    per experience, so a remote server sees few requests."""

    def __init__(self, tracking: Tracking, config: RunConfig, key: str, tags: dict[str, str]):
        # MLflow 3 refuses its file store (the default here, as the issue asks) unless this is set
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        uri = tracking.tracking_uri or (tracking.results_dir / "mlruns").resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(tracking.experiment)
        if experiment is None:
            try:
                experiment_id = self.client.create_experiment(tracking.experiment)
            except MlflowException:  # another worker of the sweep created it first
                experiment_id = self.client.get_experiment_by_name(tracking.experiment).experiment_id
        else:
            experiment_id = experiment.experiment_id
        self.run_id = self.client.create_run(experiment_id, run_name=key, tags=tags).info.run_id
        params = [Param(k, str(v)) for k, v in flat_params(config.model_dump()).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])
        self.pending = []
        self.finished = False

    def _metric(self, name: str, value: float, step: int) -> None:
        from mlflow.entities import Metric

        self.pending.append(Metric(name, float(value), int(time.time() * 1000), step))

    def _flush(self) -> None:
        for start in range(0, len(self.pending), 1000):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(self.run_id, metrics=self.pending[start : start + 1000])
        self.pending = []

    def loss(self, step: int, value: float) -> None:
        self._metric("train/loss", value, step)

    def row(self, experience: int, step: int, accuracies: list[float]) -> None:
        for name, a in accuracy_names(accuracies).items():
            self._metric(name, a, experience)
        self._flush()

    def finish(self, experience: int, step: int, metrics: dict) -> None:
        for name, value in metrics.items():
            if value is not None:
                self._metric(name, value, experience)
        self._flush()
        self.client.set_terminated(self.run_id, "FINISHED")
        self.finished = True

    def close(self, ok: bool) -> None:
        if not self.finished:
            self._flush()
            self.client.set_terminated(self.run_id, "FAILED")


class WandbSink:
    """An offline W&B run under ``wandb/`` (``wandb sync <results>/wandb/offline-run-*`` uploads it)."""

    def __init__(self, tracking: Tracking, config: RunConfig, key: str, tags: dict[str, str]):
        import wandb

        Path(tracking.results_dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            mode="offline",
            dir=str(tracking.results_dir),
            project=tracking.experiment,
            name=key,
            group=f"{config.benchmark}/{config.strategy}",
            config={**config.model_dump(), **tags},
            settings=wandb.Settings(silent=True, console="off"),
        )

    def loss(self, step: int, value: float) -> None:
        self.run.log({"train/loss": value}, step=step)

    def row(self, experience: int, step: int, accuracies: list[float]) -> None:
        self.run.log({**accuracy_names(accuracies), "experience": experience}, step=step)

    def finish(self, experience: int, step: int, metrics: dict) -> None:
        self.run.summary.update({k: v for k, v in metrics.items() if v is not None})

    def close(self, ok: bool) -> None:
        self.run.finish(exit_code=0 if ok else 1)


SINKS = {"csv": CsvSink, "tensorboard": TensorBoardSink, "mlflow": MlflowSink, "wandb": WandbSink}
