"""GDumb: the greedy class-balancing sampler on hand-made streams, the SGDR schedule against
torch's scheduler driven as in the authors' code, and, on tiny data, that each experience
retrains from the initial weights on the memory alone."""

import math

import pytest
import torch
from avalanche.core import SupervisedPlugin

from baselines.gdumb_memory import GDumbPlugin, GreedyClassBalancedMemory, sgdr_lr
from baselines.loaders import TensorBatches
from baselines.registry import get_strategy
from baselines.setup import StrategySetup
from benchmarks.streams import build_benchmark

# ----------------------------------------------------------------------------- sampler


def offer(memory, labels, start=0):
    """Samples whose x is their position in the stream (from ``start``), t = 0."""
    y = torch.tensor(labels)
    x = torch.arange(start, start + len(labels)).float().view(-1, 1)
    memory.offer(x, y, torch.zeros(len(labels), dtype=torch.long))
    return x, y


def test_sampler_hand_stream():
    torch.manual_seed(0)
    memory = GreedyClassBalancedMemory(4)
    offer(memory, [0, 0, 0, 0])
    assert memory.class_counts() == {0: 4}
    offer(memory, [0], start=4)  # full and class 0 holds more than 4 / 1: dropped
    assert memory.class_counts() == {0: 4}
    offer(memory, [1, 1, 1], start=5)  # 1 replaces a 0 while it holds fewer than 4 / 2
    assert memory.class_counts() == {0: 2, 1: 2}
    offer(memory, [2], start=8)  # 0 < 4 / 3: replaces an item of the largest class (0, seen first)
    assert memory.class_counts() == {0: 1, 1: 2, 2: 1}
    x, y, t = memory.stored()
    stream = [0, 0, 0, 0, 0, 1, 1, 1, 2]
    assert [stream[int(i)] for i in x.view(-1)] == y.tolist()  # every row is a sample offered with its label
    assert sorted(int(i) for i in x[y == 1].view(-1)) == [5, 6]  # the first two 1s, not the dropped third
    assert x[y == 2].view(-1).tolist() == [8.0]
    assert len(memory) == 4 and memory.nbytes() == 4 * (4 + 8 + 8)


def test_sampler_balances_classes_that_arrive_in_turn():
    torch.manual_seed(0)
    memory = GreedyClassBalancedMemory(10)
    x, y = offer(memory, [0] * 20 + [1] * 20 + [2] * 20)
    # 10 x class 0; then 1 takes slots until 5 / 5; then 2 takes from the largest until 3, 3, 4
    assert memory.class_counts() == {0: 3, 1: 3, 2: 4}
    stored_x, stored_y, _ = memory.stored()
    assert torch.equal(y[stored_x.view(-1).long()], stored_y)
    assert len(set(stored_x.view(-1).tolist())) == 10
    # class 0 kept a random 3 of its first 10 (the later 10 were dropped)
    assert all(i < 10 for i in stored_x[stored_y == 0].view(-1).tolist())


def test_sampler_partially_filled_and_random_replacement():
    memory = GreedyClassBalancedMemory(6)
    offer(memory, [3, 3, 3])
    assert len(memory) == 3 and memory.class_counts() == {3: 3}
    kept = set()
    for seed in range(20):
        torch.manual_seed(seed)
        m = GreedyClassBalancedMemory(2)
        offer(m, [0, 0, 1])
        x, y, _ = m.stored()
        kept.add(int(x[y == 0]))
    assert kept == {0, 1}  # the replaced item is drawn at random


# ----------------------------------------------------------------------------- schedule


def test_sgdr_schedule_matches_the_authors_loop():
    max_lr, min_lr = 0.05, 0.0005
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=max_lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=1, T_mult=2, eta_min=min_lr)
    for epoch in range(70):
        if epoch == 0:
            optimizer.param_groups[0]["lr"] = max_lr * 0.1
        elif epoch == 1:
            optimizer.param_groups[0]["lr"] = max_lr
        else:
            scheduler.step()
        assert sgdr_lr(epoch, max_lr, min_lr) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12), epoch
    assert [sgdr_lr(e, 1.0, 0.0) == 1.0 for e in range(1, 9)] == [True, True, False, True, False, False, False, True]
    assert sgdr_lr(31, 1.0, 0.0) == pytest.approx((1 + math.cos(math.pi * 15 / 16)) / 2)  # end of the 16-epoch cycle


# ----------------------------------------------------------------------------- training


class Trace(SupervisedPlugin):
    """Per experience: the parameters at its first step, the minibatches, the lr of each epoch
    and Adam's step count after the first update."""

    def __init__(self):
        super().__init__()
        self.first_params, self.batches, self.lrs, self.adam_steps = [], [], [], []

    def before_training_exp(self, strategy, **kwargs):
        self.batches.append([])
        self.lrs.append([])
        self.first_params.append(None)
        self.loader = strategy.dataloader

    def before_training_epoch(self, strategy, **kwargs):
        self.lrs[-1].append(strategy.optimizer.param_groups[0]["lr"])

    def before_training_iteration(self, strategy, **kwargs):
        if self.first_params[-1] is None:
            self.first_params[-1] = [p.detach().clone() for p in strategy.model.parameters()]
        self.batches[-1].append(strategy.mb_x.view(len(strategy.mb_x), -1).sum(1))

    def after_update(self, strategy, **kwargs):
        if len(self.batches[-1]) == 1:
            p = next(strategy.model.parameters())
            self.adam_steps.append(int(strategy.optimizer.state[p]["step"]))


def test_each_experience_retrains_from_scratch_on_the_memory(synthetic_mnist):
    torch.manual_seed(0)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0, n_experiences=5)
    spec = get_strategy("gdumb")
    trace = Trace()
    setup = StrategySetup(memory=30, batch_size=8, lr=0.01, plugins=[trace])
    strategy = spec.build(setup, spec.validate_options({"epochs": 4}, setup.memory))
    initial = [p.detach().clone() for p in strategy.model.parameters()]
    plugin = next(p for p in strategy.plugins if isinstance(p, GDumbPlugin))
    assert strategy.train_epochs == 4 and spec.memory_bytes(strategy) == 0

    for k, experience in enumerate(bench.train_stream):
        strategy.train(experience)
        x, y, _ = plugin.memory.stored()
        assert len(x) == min(30, sum(len(e.tensors[1]) for e in list(bench.train_stream)[: k + 1]))
        counts = plugin.memory.class_counts()
        assert set(counts) == set(range(2 * k + 2)) and max(counts.values()) - min(counts.values()) <= 1
        assert all(torch.equal(a, b) for a, b in zip(trace.first_params[k], initial))  # from scratch
        assert isinstance(trace.loader, TensorBatches)
        # 4 epochs over the memory only: each epoch visits every stored sample once
        stored = sorted(x.view(len(x), -1).sum(1).tolist())
        per_epoch = -(-len(x) // 8)
        assert len(trace.batches[k]) == 4 * per_epoch
        for epoch in range(4):
            seen = torch.cat(trace.batches[k][epoch * per_epoch : (epoch + 1) * per_epoch])
            assert sorted(seen.tolist()) == pytest.approx(stored)
        assert trace.lrs[k] == pytest.approx([sgdr_lr(e, 0.01, 0.0001) for e in range(4)])
    assert trace.adam_steps == [1] * 5  # the optimiser's state is cleared at each retraining
    assert not all(torch.equal(a, b) for a, b in zip(strategy.model.parameters(), initial))
    assert spec.memory_bytes(strategy) == 30 * (28 * 28 * 4 + 8 + 8)


def test_constant_lr_without_sgdr(synthetic_mnist):
    torch.manual_seed(0)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0, n_experiences=5)
    spec, trace = get_strategy("gdumb"), Trace()
    setup = StrategySetup(memory=20, batch_size=8, lr=0.02, plugins=[trace])
    strategy = spec.build(setup, spec.validate_options({"epochs": 3, "sgdr": False}, setup.memory))
    for experience in list(bench.train_stream)[:2]:
        strategy.train(experience)
    assert trace.lrs == [[0.02] * 3] * 2


def test_options():
    spec = get_strategy("gdumb")
    assert spec.validate_options({}, 500).epochs == 32
    with pytest.raises(ValueError, match="greater than 0"):
        spec.validate_options({"epochs": 0}, 500)
    with pytest.raises(ValueError, match="unknown option 'cutmix'"):
        spec.validate_options({"cutmix": 1.0}, 500)
