"""MIR: the virtual step is the optimiser's, the retrieval picks the largest loss increases, and
the retrieved samples join the incoming minibatch."""

import copy

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin

from baselines.mir import virtual_step
from baselines.registry import get_strategy
from baselines.setup import StrategySetup
from baselines.stream_memory import StreamReplayPlugin
from benchmarks.streams import build_benchmark

SPEC = get_strategy("mir")


def build(plugins=(), options=None, **setup_fields):
    fields = {"batch_size": 8, "replay_batch_size": 3, "mlp_width": 16, "memory": 20, **setup_fields}
    setup = StrategySetup(**fields, plugins=list(plugins))
    return SPEC.build(setup, SPEC.validate_options(options or {"subsample": 6}, setup.memory))


def mir_plugin(strategy):
    return next(p for p in strategy.plugins if isinstance(p, StreamReplayPlugin))


@pytest.mark.parametrize(
    "make", [lambda p: torch.optim.SGD(p, lr=0.3), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)]
)
def test_virtual_step_is_the_optimisers_next_step_and_changes_nothing(make):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    optimizer = make(model.parameters())
    for _ in range(3):  # from an empty state (step 0), then with moments
        x, y = torch.randn(7, 5), torch.randint(0, 3, (7,))
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        params = {k: p.detach().clone() for k, p in model.named_parameters()}
        grads = {k: p.grad.clone() for k, p in model.named_parameters()}
        state = copy.deepcopy(optimizer.state_dict())
        virtual = virtual_step(optimizer, dict(model.named_parameters()), grads)
        assert str(optimizer.state_dict()) == str(state)  # moments and step count untouched
        for k, p in model.named_parameters():
            assert torch.equal(p.detach(), params[k])
        optimizer.step()
        for k, p in model.named_parameters():
            torch.testing.assert_close(virtual[k], p.detach(), rtol=1e-6, atol=1e-7)


def test_virtual_step_refuses_momentum():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    params = dict(model.named_parameters())
    with pytest.raises(NotImplementedError, match="SGD"):
        virtual_step(optimizer, params, {k: torch.zeros_like(p) for k, p in params.items()})


class Steps(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.incoming, self.joined, self.models = [], [], []

    def before_training_iteration(self, strategy, **kwargs):
        self.incoming.append([t.clone() for t in strategy.mbatch[:3]])
        self.models.append(copy.deepcopy(strategy.model))  # before this step's update

    def before_backward(self, strategy, **kwargs):
        self.joined.append([t.clone() for t in strategy.mbatch[:3]])


def test_replays_the_candidates_whose_loss_the_step_raises_most(synthetic_mnist, monkeypatch):
    torch.manual_seed(0)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0, n_experiences=5)
    steps = Steps()
    strategy = build([steps], optimizer="sgd", lr=0.5)
    plugin = mir_plugin(strategy)
    candidates = []
    real_sample = plugin.memory.sample

    def sample(n, *names):
        candidates.append(real_sample(n, *names))
        return candidates[-1]

    monkeypatch.setattr(plugin.memory, "sample", sample)
    strategy.train(bench.train_stream[0])
    strategy.train(bench.train_stream[1])

    assert len(steps.joined[0][0]) == 8  # empty memory: the incoming minibatch alone
    checked, seen = 0, 0
    for k, ((x_in, y_in, _), (x, y, _t)) in enumerate(zip(steps.incoming, steps.joined)):
        seen += len(x_in)
        if k == 0:
            continue
        cx, cy, _ = candidates[k - 1]
        assert len(cx) == min(6, seen - len(x_in), 20)  # subsample, or the whole memory while smaller
        assert torch.equal(x[: len(x_in)], x_in) and len(x) == len(x_in) + min(3, len(cx))
        model = steps.models[k]  # moved by hand: one SGD step on the incoming minibatch
        moved = copy.deepcopy(model)
        F.cross_entropy(moved(x_in), y_in).backward()
        with torch.no_grad():
            for p in moved.parameters():
                p -= 0.5 * p.grad
            before = F.cross_entropy(model(cx), cy, reduction="none")
            increase = F.cross_entropy(moved(cx), cy, reduction="none") - before
        expected = increase.argsort(descending=True, stable=True)[:3]
        assert torch.equal(x[len(x_in) :], cx[expected]) and torch.equal(y[len(x_in) :], cy[expected])
        checked += 1
    assert checked >= 8


def test_memory_is_a_reservoir_of_the_stream(synthetic_mnist):
    torch.manual_seed(0)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0, n_experiences=5)
    strategy = build()
    for experience in bench.train_stream:
        strategy.train(experience)
    memory = mir_plugin(strategy).memory
    assert len(memory) == 20 and memory.seen == sum(len(e.tensors[1]) for e in bench.train_stream)
    assert SPEC.memory_bytes(strategy) == 20 * (28 * 28 * 4 + 16)


def test_subsample_must_exceed_the_replay_minibatch():
    assert SPEC.validate_options({}, 500).subsample == 50  # the paper's MNIST setting
    setup = StrategySetup(batch_size=128, memory=500)  # replay minibatch: 128
    with pytest.raises(ValueError, match=r"subsample \(50\) must exceed the replay minibatch \(128\)"):
        SPEC.build(setup, SPEC.validate_options({}, 500))
    with pytest.raises(ValueError, match="unknown option 'n_candidates'"):
        SPEC.validate_options({"n_candidates": 5}, 500)
