"""The runner's side of tracking: one ``Tracker`` per run fans each value out to the writers of
``sinks``; its Avalanche plugin reads the training loss every ``Tracking.loss_every`` iterations."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin

from benchmarks.config import RunConfig
from benchmarks.provenance import code_version, short_version
from benchmarks.store import result_path
from benchmarks.tracking import Tracking
from benchmarks.tracking.sinks import SINKS


def run_key(config: RunConfig) -> str:
    """``<benchmark>/<strategy>/<hash>/seed<N>``: the run's place in every tracker, as in ``runs/``."""
    return result_path("", config).relative_to("runs").with_suffix("").as_posix()


class LossPlugin(SupervisedPlugin):
    """The loss of iterations 1, 1 + every, 1 + 2 every, ...: one host sync per logged value."""

    def __init__(self, tracker: Tracker, every: int):
        super().__init__()
        self.tracker, self.every, self.iteration = tracker, every, 0

    def after_training_iteration(self, strategy, **kwargs):
        self.iteration += 1
        if (self.iteration - 1) % self.every == 0:
            loss = strategy.loss
            self.tracker.loss(self.iteration, loss.item() if hasattr(loss, "item") else float(loss))


class Tracker:
    """Context manager: the writers are closed however the run ends (marked failed if it raised).
    Without ``tracking`` it has no writers and no plugin, and every call does nothing."""

    def __init__(self, tracking: Tracking | None, config: RunConfig):
        self.sinks, self.plugins, self.experience = [], [], 0
        self.plugin = LossPlugin(self, tracking.loss_every if tracking else 1)
        if not tracking:
            return
        version = code_version()
        tags = {
            "config_hash": config.config_hash(),
            "seed": str(config.seed),
            "code_version": short_version(version["git_commit"], version["dirty"]),
            "git_commit": str(version["git_commit"]),
            "benchmark": config.benchmark,
            "strategy": config.strategy,
            "experiment": config.experiment,
            "variant": config.variant,
        }
        try:
            for backend in tracking.backends:
                self.sinks.append(SINKS[backend](tracking, config, run_key(config), tags))
        except BaseException:
            self._close(ok=False)
            raise
        self.plugins = [self.plugin]  # the strategy's extra plugins: none when nothing is tracked

    def loss(self, step: int, value: float) -> None:
        for sink in self.sinks:
            sink.loss(step, value)

    def row(self, accuracies: list[float]) -> None:
        """The accuracy-matrix row after the next training experience."""
        self.experience += 1
        for sink in self.sinks:
            sink.row(self.experience, self.plugin.iteration, accuracies)

    def finish(self, metrics: dict) -> None:
        for sink in self.sinks:
            sink.finish(self.experience, self.plugin.iteration, metrics)

    def _close(self, ok: bool) -> None:
        for sink in self.sinks:
            sink.close(ok)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._close(ok=kind is None)
