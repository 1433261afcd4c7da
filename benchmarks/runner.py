"""One run: train on each experience, evaluate on the whole evaluation stream after each,
fill the accuracy matrix, and measure time, memory and model size."""

from __future__ import annotations

import random
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from tqdm.auto import tqdm

from baselines.registry import get_strategy
from baselines.setup import StrategySetup
from baselines.template import HarnessTemplate
from benchmarks import metrics
from benchmarks.config import RunConfig
from benchmarks.data import MNIST, load_mnist
from benchmarks.devices import resolve
from benchmarks.online import MiniStream, train_online
from benchmarks.protocol import boundary_free
from benchmarks.provenance import code_version, device_info, machine, package_versions
from benchmarks.scenarios import get_scenario
from benchmarks.store import SCHEMA_VERSION, result_path, write_atomic
from benchmarks.streams import Benchmark, build_benchmark
from benchmarks.tracking import Tracking
from benchmarks.tracking.tracker import Tracker


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class AccuracyPlugin(SupervisedPlugin):
    """Counts correct predictions per evaluated experience; one host sync per experience."""

    def __init__(self):
        super().__init__()
        self.accuracies: dict[int, float] = {}

    def before_eval_exp(self, strategy, **kwargs):
        self._correct = torch.zeros((), dtype=torch.long, device=strategy.device)
        self._seen = 0

    def after_eval_iteration(self, strategy, **kwargs):
        self._correct += (strategy.mb_output.argmax(1) == strategy.mb_y).sum()
        self._seen += len(strategy.mb_y)

    def after_eval_exp(self, strategy, **kwargs):
        self.accuracies[strategy.experience.current_experience] = self._correct.item() / max(self._seen, 1)


class ProgressPlugin(SupervisedPlugin):
    """A tqdm bar over the iterations of each training experience."""

    def __init__(self, label: str):
        super().__init__()
        self.label = label
        self.bar = None

    def before_training_exp(self, strategy, **kwargs):
        total = len(strategy.dataloader) * strategy.train_epochs
        self.bar = tqdm(
            total=total, desc=f"{self.label} exp {strategy.clock.train_exp_counter}", leave=False, unit="it"
        )

    def after_training_iteration(self, strategy, **kwargs):
        self.bar.update()

    def after_training_exp(self, strategy, **kwargs):
        self.bar.close()


def evaluate(strategy, stream, accuracy: AccuracyPlugin) -> list[float]:
    """Accuracy on every experience of ``stream``. The global RNG is restored afterwards so
    that evaluating (or not) never changes what training sees."""
    state = torch.get_rng_state()
    accuracy.accuracies.clear()
    strategy.eval(stream)
    torch.set_rng_state(state)
    return [accuracy.accuracies[i] for i in range(len(stream))]


def peak_rss_bytes() -> int:
    """This process's peak resident set size.

    Linux's ``VmHWM`` is the peak of this process's own address space. ``ru_maxrss`` is not:
    it survives ``exec``, so a sweep worker (fork + exec of a fresh interpreter) would report
    at least its parent's size at the time of the fork. ``ru_maxrss`` is the fallback elsewhere.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def strategy_setup(config: RunConfig, bench, plugins: list, device: str = "cpu") -> StrategySetup:
    """The shared settings every strategy of ``config`` is built from, on ``device``."""
    return StrategySetup(
        backbone=config.backbone,
        mlp_width=config.mlp_width,
        init=config.init,
        n_classes=bench.n_classes,
        memory=config.memory,
        lr=config.lr,
        optimizer=config.optimizer,
        batch_size=config.batch_size,
        replay_batch_size=config.replay_batch_size,
        eval_batch_size=config.eval_batch_size,
        epochs=config.epochs,
        n_experiences=len(bench.train_stream),
        class_masks=bench.class_masks,
        fast_data=config.fast_data,
        device=str(device),
        boundaries=boundary_free(config.benchmark, config.online) is None,
        plugins=plugins,
    )


def run(
    config: RunConfig,
    *,
    data: MNIST | None = None,
    progress: bool = True,
    tracking: Tracking | None = None,
    extra_plugins: Callable[[Benchmark], Sequence[SupervisedPlugin]] | None = None,
    device: str = "cpu",
) -> dict:
    """Train and evaluate one configuration on ``device`` (``benchmarks.devices``: auto, cpu,
    cuda[:N]); return the run record (not yet written), which names the device. With
    ``tracking``, the loss, each accuracy-matrix row and the final metrics also go to its trackers;
    the record is the same either way. ``extra_plugins(benchmark)``, if given, returns more plugins
    for the strategy (after the harness's): observers that need the run's own streams, such as
    ``benchmarks.diagnostics``, which probes on the validation stream."""
    device = resolve(device)  # before the data: a missing GPU fails at once
    data = data or load_mnist(config.data_root)
    bench = build_benchmark(
        config.benchmark,
        data,
        seed=config.seed,
        n_experiences=config.n_experiences,
        valid_fraction=config.valid_fraction,
        train_per_experience=config.train_per_experience,
        input_scale=config.input_scale,
        blur=config.blur,
    )
    seed_everything(config.seed)  # after the benchmark: stream construction uses its own generator

    spec = get_strategy(config.strategy)
    options = spec.validate_options(config.strategy_options, config.memory)
    accuracy = AccuracyPlugin()
    # a bar per experience; mini-experiences (one iteration each) are counted by the experiences' bar
    per_experience_bar = progress and boundary_free(config.benchmark, config.online) is None
    harness_plugins = [accuracy] + (
        [ProgressPlugin(f"{config.strategy}/{config.benchmark}")] if per_experience_bar else []
    )
    with Tracker(tracking, config) as tracker:
        extra = list(extra_plugins(bench)) if extra_plugins else []
        setup = strategy_setup(config, bench, harness_plugins + tracker.plugins + extra, device)
        strategy = spec.build(setup, options)
        # Without boundaries the strategy's own plugins never see an evaluation (it would tell them
        # where an experience ends): a plain template on the same model evaluates instead.
        evaluator = (
            strategy
            if setup.boundaries
            else HarnessTemplate(**setup.template_kwargs(strategy.model), plugins=[accuracy])
        )
        matrix, train_seconds, eval_seconds = train_and_evaluate(
            config, bench, spec, strategy, accuracy, progress, tracker, evaluator
        )
        summary = metrics.summarise(matrix, joint=spec.joint)
        summary.update(
            train_seconds=sum(train_seconds),
            eval_seconds=eval_seconds,
            peak_rss_bytes=peak_rss_bytes(),
            parameter_count=sum(p.numel() for p in strategy.model.parameters()),
            memory_bytes=int(spec.memory_bytes(strategy)),
        )
        tracker.finish(summary)
    version = code_version()
    return {
        "schema_version": SCHEMA_VERSION,
        "config": config.model_dump(),
        "config_hash": config.config_hash(),
        "metrics": summary,
        "accuracy_matrix": matrix,
        "experience_seconds": train_seconds,
        "versions": package_versions(),
        "git_commit": version["git_commit"],
        "git_dirty": version["dirty"],
        "machine": machine(),
        "device": device_info(device),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def train_and_evaluate(
    config: RunConfig,
    bench,
    spec,
    strategy,
    accuracy: AccuracyPlugin,
    progress: bool,
    tracker: Tracker,
    evaluator=None,
) -> tuple[list[list[float]], list[float], float]:
    """Train on each experience and evaluate after it: (accuracy matrix, seconds per experience, eval seconds).

    Without boundaries (online protocol, task-free scenario) the strategy trains on the stream's
    mini-experiences (``benchmarks.online``) and is evaluated where each original experience ends."""
    eval_stream = bench.test_stream if config.eval_split == "test" else bench.valid_stream
    if boundary_free(config.benchmark, config.online):
        task_free = get_scenario(config.benchmark).task_free
        stream = MiniStream([e.tensors for e in bench.train_stream], config.batch_size, task_free, config.seed)
        steps, total = train_online(strategy, stream), len(bench.train_stream)
    else:
        train_experiences = [bench.joint_experience()] if spec.joint else list(bench.train_stream)
        steps, total = train_each(strategy, train_experiences), len(train_experiences)

    matrix, train_seconds, eval_seconds = [], [], 0.0
    experiences = tqdm(
        steps,
        total=total,
        desc=f"{config.strategy} on {config.benchmark} seed {config.seed}",
        disable=not progress,
        unit="exp",
    )
    for _, seconds in experiences:
        train_seconds.append(seconds)
        start = time.perf_counter()
        matrix.append(evaluate(evaluator or strategy, eval_stream, accuracy))
        eval_seconds += time.perf_counter() - start
        tracker.row(matrix[-1])
        experiences.set_postfix(
            seen_acc=f"{metrics.seen_accuracy(matrix)[-1] if not spec.joint else np.mean(matrix[-1]):.3f}"
        )
    return matrix, train_seconds, eval_seconds


def train_each(strategy, experiences) -> Iterator[tuple[int, float]]:
    """One ``train`` call per experience; yields ``(i, seconds)`` after each."""
    for i, experience in enumerate(experiences):
        start = time.perf_counter()
        strategy.train(experience)
        yield i, time.perf_counter() - start


def run_and_store(
    config: RunConfig,
    results_dir: Path,
    *,
    progress: bool = True,
    data: MNIST | None = None,
    tracking: Tracking | None = None,
    device: str = "cpu",
) -> dict:
    record = run(config, data=data, progress=progress, tracking=tracking, device=device)
    write_atomic(result_path(results_dir, config), record)
    return record
