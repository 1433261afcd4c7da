"""The harness's fast data path must not change results.

``fast_data=True`` gathers minibatches from the experience's tensors (``baselines.loaders``);
``fast_data=False`` is Avalanche's stock per-sample ``DataLoader`` path. For a fixed seed both
must give the same accuracy matrix, bit for bit, for every built-in strategy. This holds
because the fast loaders consume the global random stream exactly as the stock loaders do
(base-seed draw, then each sampler's seed, then ``randperm``), including reservoir replay's
``ReplayDataLoader`` (its buffer passes and their remainder batches), and because the runner
restores the RNG state around evaluation.

Runs use a tiny synthetic MNIST-format data root (a few hundred images) and one torch
thread (tests/conftest.py) to stay fast.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from avalanche.core import SupervisedPlugin

from baselines.loaders import TensorReplayBatches
from benchmarks.config import RunConfig
from benchmarks.runner import run

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def data_root(synthetic_root):
    """conftest's tiny learnable MNIST-format root (30 train, 10 test images per class)."""
    return synthetic_root


def run_both(data_root, loader_paths, **fields):
    """The same config through the fast and the stock path; returns (fast, stock) records.
    Each run must really take its path (else the two would compare equal trivially)."""
    base = dict(benchmark="split-mnist", seed=3, batch_size=16, eval_batch_size=50, memory=40, data_root=str(data_root))
    base.update(fields)
    records = []
    for fast in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records.append(run(RunConfig(**base, fast_data=fast), progress=False))
    assert loader_paths() == ["fast", "stock"]
    return records


@pytest.mark.parametrize(
    "strategy, options",
    [
        ("naive", {}),
        ("ewc", {"ewc_lambda": 100.0}),
        ("si", {"c": 1.0, "xi": 0.9}),
        ("ewc-online", {"e_lambda": 90.0}),
        ("lwf", {}),
        ("epinet", {}),
        ("epinet", {"preset": "notebook", "class_balanced": True, "reencode_every": 3}),
        ("gem", {}),
        ("agem", {}),
    ],
)
def test_fast_path_gives_identical_accuracy_matrix(data_root, loader_paths, strategy, options):
    fast, stock = run_both(data_root, loader_paths, strategy=strategy, strategy_options=options)
    assert fast["accuracy_matrix"] == stock["accuracy_matrix"]
    # Learning happened (a matrix of chance-level zeros would compare equal trivially).
    assert max(fast["accuracy_matrix"][0]) > 0.5


@pytest.mark.parametrize("strategy", ["naive", "replay", "epinet", "gem", "ewc-online", "lwf"])
def test_fast_path_identical_on_task_incremental(data_root, loader_paths, strategy):
    """Logit masking and multi-task buffers take the same path on both sides."""
    fast, stock = run_both(data_root, loader_paths, strategy=strategy, benchmark="split-mnist-task", n_experiences=5)
    assert fast["accuracy_matrix"] == stock["accuracy_matrix"]


class BatchRecorder(SupervisedPlugin):
    """Records each training step's minibatch (x, y), per experience."""

    def __init__(self):
        super().__init__()
        self.steps: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
        self.loaders: list[type] = []

    def before_training_exp(self, strategy, **kwargs):  # runs after the replay plugin's
        self.steps.append([])
        self.loaders.append(type(strategy.dataloader))

    def before_forward(self, strategy, **kwargs):
        self.steps[-1].append((strategy.mb_x.clone(), strategy.mb_y.clone()))


def test_replay_paths_give_identical_batches(data_root):
    """Step by step, the fast replay loader yields exactly the stock ReplayDataLoader's batches."""
    from baselines.registry import get_strategy
    from baselines.setup import StrategySetup
    from baselines.tensor_plugins import ReservoirReplayPlugin
    from benchmarks.data import load_mnist
    from benchmarks.runner import seed_everything
    from benchmarks.streams import build_benchmark

    data = load_mnist(data_root)
    bench = build_benchmark("split-mnist", data, seed=3, n_experiences=2)
    recorded = {}
    for fast in (True, False):
        seed_everything(3)
        recorder = BatchRecorder()
        setup = StrategySetup(
            n_classes=10, memory=40, batch_size=16, eval_batch_size=50, fast_data=fast, plugins=[recorder]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            strategy = get_strategy("replay").build(setup, get_strategy("replay").validate_options({}, setup.memory))
            buffers = []
            for exp in bench.train_stream:
                plugin = next(p for p in strategy.plugins if isinstance(p, ReservoirReplayPlugin))
                buffer = plugin.storage_policy.buffer
                buffers.append(None if len(buffer) == 0 else torch.stack([buffer[i][0] for i in range(len(buffer))]))
                strategy.train(exp)
        recorded[fast] = (recorder.steps, buffers)
        assert (recorder.loaders[1] is TensorReplayBatches) == fast

    (fast_steps, fast_buffers), (stock_steps, stock_buffers) = recorded[True], recorded[False]
    assert len(fast_steps) == len(stock_steps) == 2
    # Same buffer after experience 0 (reservoir sampling draws from the global RNG).
    assert torch.equal(fast_buffers[1], stock_buffers[1])
    buffer_rows = {tuple(row.flatten().tolist()) for row in fast_buffers[1]}
    for fast_exp, stock_exp in zip(fast_steps, stock_steps):
        assert len(fast_exp) == len(stock_exp)
        for (fx, fy), (sx, sy) in zip(fast_exp, stock_exp):
            assert torch.equal(fx, sx) and torch.equal(fy, sy)
    # Experience 1: each step holds 16 current samples (the remainder in the last step) then a
    # buffer minibatch; the buffer goes in shuffled passes of 16, 16, 8 (40 items), as
    # ReplayDataLoader's samplers do.
    n1 = len(bench.train_stream[1].tensors[1])
    current = [16] * (n1 // 16) + ([n1 % 16] if n1 % 16 else [])
    from_buffer = ([16, 16, 8] * len(current))[: len(current)]
    assert [len(x) for x, _ in fast_steps[1]] == [c + m for c, m in zip(current, from_buffer)]
    for (x, _), cur in zip(fast_steps[1], current):
        assert all(tuple(row.flatten().tolist()) in buffer_rows for row in x[cur:])


def test_replay_fast_path_gives_identical_accuracy_matrix(data_root, loader_paths):
    fast, stock = run_both(data_root, loader_paths, strategy="replay")
    assert fast["accuracy_matrix"] == stock["accuracy_matrix"]
