"""Harness pieces every baseline shares: the tensor minibatch loaders, the replay loader,
the task-incremental logit mask, and replay's reported memory."""

import math

import pytest
import torch
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader, TensorDataset

from baselines.loaders import TensorBatches, TensorReplayBatches
from baselines.registry import get_strategy
from baselines.setup import StrategySetup
from baselines.tensor_plugins import ReservoirReplayPlugin
from benchmarks.streams import build_benchmark

# ----------------------------------------------------------------------------- TensorBatches


def dataloader_order(n, batch_size, epochs):
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=batch_size, shuffle=True)
    return [torch.cat([b[0] for b in loader]) for _ in range(epochs)]


@pytest.mark.parametrize("n, batch_size", [(103, 10), (64, 16), (5, 8)])
def test_tensor_batches_shuffle_like_dataloader(n, batch_size):
    data = (torch.arange(n), torch.arange(n) * 10, torch.zeros(n, dtype=torch.long))
    loader = TensorBatches(data, batch_size, shuffle=True)
    assert len(loader) == math.ceil(n / batch_size)

    torch.manual_seed(7)
    epochs = []
    for _ in range(3):
        batches = list(loader)
        assert len(batches) == len(loader)
        assert [len(b[0]) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
        for x, y, t in batches:
            assert torch.equal(y, x * 10) and torch.equal(t, torch.zeros_like(x))  # rows stay together
        order = torch.cat([b[0] for b in batches])
        assert sorted(order.tolist()) == list(range(n))  # every sample exactly once
        epochs.append(order)
    after_fast = torch.rand(3)

    torch.manual_seed(7)
    expected = dataloader_order(n, batch_size, epochs=3)
    after_stock = torch.rand(3)
    for fast, stock in zip(epochs, expected):
        assert torch.equal(fast, stock)
    assert not torch.equal(epochs[0], epochs[1])  # each epoch reshuffles
    assert torch.equal(after_fast, after_stock)  # the random stream was consumed alike


def test_tensor_batches_in_order_without_shuffle():
    data = (torch.arange(25).float(), torch.arange(25))
    state = torch.get_rng_state()
    batches = list(TensorBatches(data, 10, shuffle=False))
    assert [b[1].tolist() for b in batches] == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert torch.equal(torch.get_rng_state(), state)  # evaluation order draws nothing


# ----------------------------------------------------------------------------- TensorReplayBatches


def test_tensor_replay_batches_mix_current_and_memory():
    n, n_mem, batch_size, batch_size_mem = 50, 16, 8, 8
    data = (torch.arange(n), torch.arange(n) % 10, torch.ones(n, dtype=torch.long))
    memory = (1000 + torch.arange(n_mem), torch.arange(n_mem) % 10, torch.zeros(n_mem, dtype=torch.long))
    loader = TensorReplayBatches(data, memory, batch_size, batch_size_mem)
    assert len(loader) == len(TensorBatches(data, batch_size, shuffle=True)) == 7

    torch.manual_seed(0)
    steps = list(loader)
    assert len(steps) == len(loader)
    current, replayed = [], []
    for k, (x, y, t) in enumerate(steps):
        n_cur = batch_size if k < len(steps) - 1 else n - batch_size * (len(steps) - 1)
        assert len(x) == n_cur + batch_size_mem
        assert (x[:n_cur] < 1000).all() and (x[n_cur:] >= 1000).all()  # current first, then memory
        assert torch.equal(t[:n_cur], torch.ones(n_cur, dtype=torch.long)) and not t[n_cur:].any()
        assert torch.equal(y, torch.cat([x[:n_cur] % 10, (x[n_cur:] - 1000) % 10]))  # rows stay together
        current += x[:n_cur].tolist()
        replayed += (x[n_cur:] - 1000).tolist()
    assert sorted(current) == list(range(n))  # every current sample once per epoch
    assert current != list(range(n))  # shuffled
    for start in range(0, len(replayed) - n_mem + 1, n_mem):  # each pass over the buffer visits every item once
        assert sorted(replayed[start : start + n_mem]) == list(range(n_mem))


# ----------------------------------------------------------------------------- task-incremental mask

MASKS = torch.tensor([[c // 2 == task for c in range(10)] for task in range(5)])


def test_mask_logits_hides_other_tasks_classes():
    strategy = StrategySetup(class_masks=MASKS).strategy(StrategySetup().classifier())
    logits = torch.randn(4, 10)
    before = logits.clone()
    tasks = torch.tensor([0, 1, 4, 2])
    masked = strategy.mask_logits(logits, tasks)
    for row, task in enumerate(tasks.tolist()):
        allowed = MASKS[task]
        assert torch.equal(masked[row, allowed], logits[row, allowed])
        assert torch.isneginf(masked[row, ~allowed]).all()
    assert torch.equal(strategy.mask_logits(masked, tasks), masked)  # idempotent
    assert torch.equal(logits, before)  # input not modified in place
    plain = StrategySetup().strategy(StrategySetup().classifier())
    assert plain.mask_logits(logits, tasks) is logits


class OutputsSeen(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.train, self.eval = [], []

    def after_training_iteration(self, strategy, **kwargs):
        self.train.append((strategy.mb_output.detach(), strategy.mb_task_id))

    def after_eval_iteration(self, strategy, **kwargs):
        self.eval.append((strategy.mb_output, strategy.mb_task_id))


def test_task_incremental_training_and_evaluation_are_masked(synthetic_mnist):
    torch.manual_seed(0)
    bench = build_benchmark("split-mnist-task", synthetic_mnist, seed=0, n_experiences=5)
    seen = OutputsSeen()
    setup = StrategySetup(batch_size=32, class_masks=bench.class_masks, plugins=[seen])
    strategy = get_strategy("naive").build(setup, get_strategy("naive").validate_options({}, setup.memory))
    for experience in list(bench.train_stream)[:2]:
        strategy.train(experience)
    strategy.eval(bench.test_stream)
    assert seen.train and seen.eval
    for outputs, tasks in seen.train + seen.eval:
        assert torch.isneginf(outputs[~bench.class_masks[tasks]]).all()
        assert torch.isfinite(outputs[bench.class_masks[tasks]]).all()
    assert {int(t) for _, tasks in seen.eval for t in tasks} == set(range(5))


# ----------------------------------------------------------------------------- replay memory


class BatchSizes(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.sizes = {}

    def after_training_iteration(self, strategy, **kwargs):
        self.sizes.setdefault(strategy.clock.train_exp_counter, []).append(len(strategy.mb_x))


def test_replay_memory_bytes_is_buffer_items_times_item_bytes(synthetic_mnist):
    torch.manual_seed(0)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0, n_experiences=5)
    spec = get_strategy("replay")
    sizes = BatchSizes()
    setup = StrategySetup(memory=32, batch_size=16, plugins=[sizes])
    strategy = spec.build(setup, spec.validate_options({}, setup.memory))
    assert spec.memory_bytes(strategy) == 0  # empty before training

    for experience in bench.train_stream:
        strategy.train(experience)
    buffer = next(p for p in strategy.plugins if isinstance(p, ReservoirReplayPlugin)).storage_policy.buffer
    assert len(buffer) == 32  # 270 training images seen, the reservoir holds its capacity

    x, y, t = bench.train_stream[0].tensors
    item_bytes = x[0].numel() * x.element_size() + y.element_size() + t.element_size()
    assert item_bytes == 28 * 28 * 4 + 8 + 8
    assert spec.memory_bytes(strategy) == 32 * item_bytes

    # 54 training images per experience; from the second experience on, every step adds 16
    # replayed samples (the buffer, 32 items, is a whole number of replay batches).
    assert sizes.sizes[0] == [16, 16, 16, 6]
    for exp in range(1, 5):
        assert sizes.sizes[exp] == [32, 32, 32, 22]


def test_run_record_reports_replay_buffer_bytes(synthetic_mnist):
    from benchmarks.config import RunConfig
    from benchmarks.runner import run

    config = RunConfig(benchmark="split-mnist", strategy="replay", memory=40, batch_size=32, n_experiences=2)
    record = run(config, data=synthetic_mnist, progress=False)
    assert record["metrics"]["memory_bytes"] == 40 * (28 * 28 * 4 + 8 + 8)  # 40 items of (x, y, t)
    naive = run(config.model_copy(update={"strategy": "naive"}), data=synthetic_mnist, progress=False)
    assert naive["metrics"]["memory_bytes"] == 0
