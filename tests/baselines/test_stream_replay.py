"""The reservoir memory filled from the stream, and the methods that replay it (online ER,
DER, DER++, ER-ACE): what each adds to the loss, checked by hand on tiny tensors."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from baselines.registry import get_strategy
from baselines.setup import StrategySetup
from baselines.stream_memory import OnlineReplayPlugin, ReservoirMemory


def test_reservoir_keeps_each_sample_with_probability_capacity_over_seen():
    torch.manual_seed(0)
    trials, n, capacity = 3000, 12, 4
    counts = torch.zeros(n)
    for _ in range(trials):
        memory = ReservoirMemory(capacity)
        for start in range(0, n, 5):  # minibatches of 5, 5 and 2
            ids = torch.arange(start, min(start + 5, n))
            memory.add(y=ids)
        assert len(memory) == capacity and memory.seen == n
        counts[memory.tensors["y"]] += 1
    share = counts / trials
    assert torch.allclose(share, torch.full((n,), capacity / n), atol=0.035), share  # 1/3 each, ~4 sd


def test_reservoir_fills_in_order_then_a_slot_drawn_twice_keeps_the_later_sample(monkeypatch):
    memory = ReservoirMemory(3)
    memory.add(y=torch.tensor([10, 11]), x=torch.ones(2, 2))
    assert len(memory) == 2 and memory.tensors["y"][:2].tolist() == [10, 11]
    monkeypatch.setattr(torch, "rand", lambda n: torch.zeros(n))  # every draw: slot 0
    memory.add(y=torch.tensor([12, 13, 14]), x=torch.zeros(3, 2))
    # 12 fills the free slot 2; 13 and 14 both draw slot 0: 14 wins, as in a sequential pass
    assert memory.tensors["y"].tolist() == [14, 11, 12] and memory.seen == 5
    assert memory.nbytes() == 3 * (8 + 2 * 4)


def test_sample_draws_distinct_stored_items():
    memory = ReservoirMemory(10)
    memory.add(y=torch.arange(6))
    (y,) = memory.sample(4, "y")
    assert len(y.unique()) == 4 and set(y.tolist()) <= set(range(6))
    assert sorted(memory.sample(50, "y")[0].tolist()) == list(range(6))


def fake_strategy(model, x, y, exp=0):
    output = model(x)
    return SimpleNamespace(
        model=model,
        mb_x=x,
        mb_y=y,
        mb_task_id=torch.zeros(len(y), dtype=torch.long),
        mbatch=[x, y, torch.zeros(len(y), dtype=torch.long)],
        mb_output=output,
        mb_raw_output=output,
        loss=F.cross_entropy(output, y),
        mask_logits=lambda logits, t: logits,
        clock=SimpleNamespace(train_exp_counter=exp),
        device="cpu",
    )


def plugin_of(name, options=None, memory=8, replay=8):
    setup = StrategySetup(memory=memory, replay_batch_size=replay, n_classes=4, input_shape=(3,))
    spec = get_strategy(name)
    setup.classifier = lambda: torch.nn.Linear(3, 4)
    strategy = spec.build(setup, spec.validate_options(options or {}, memory))
    return strategy.plugins[0], strategy.model


def step(plugin, strategy):
    plugin.before_training_iteration(strategy)
    plugin.before_backward(strategy) if hasattr(plugin, "before_backward") else None
    plugin.after_training_iteration(strategy)


def test_der_stores_the_step_logits_and_adds_alpha_times_their_mse():
    torch.manual_seed(1)
    plugin, model = plugin_of("der", {"alpha": 0.5})
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 3])
    first = fake_strategy(model, x, y)
    loss = first.loss.clone()
    step(plugin, first)
    assert torch.equal(first.loss, loss)  # empty memory: nothing added
    assert torch.equal(plugin.memory.tensors["logits"][:4], first.mb_raw_output.detach())
    with torch.no_grad():
        model.weight.add_(0.3)  # the model moves on: stored logits are the old ones
    second = fake_strategy(model, torch.randn(2, 3), torch.tensor([1, 2]))
    ce = second.loss.clone()
    plugin.before_backward(second)
    # the replay minibatch (8) covers the whole memory (4 items): the mean is order-free
    expected = ce + 0.5 * F.mse_loss(model(x), first.mb_raw_output.detach())
    assert torch.allclose(second.loss, expected)


def test_derpp_adds_beta_times_the_replayed_label_loss():
    torch.manual_seed(2)
    plugin, model = plugin_of("derpp", {"alpha": 0.0001, "beta": 2.0})
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 3])
    step(plugin, fake_strategy(model, x, y))
    nxt = fake_strategy(model, torch.randn(2, 3), torch.tensor([1, 2]))
    ce = nxt.loss.clone()
    plugin.before_backward(nxt)
    logits_term = 0.0001 * F.mse_loss(model(x), model(x).detach())  # zero: the model has not moved
    assert torch.allclose(nxt.loss, ce + logits_term + 2.0 * F.cross_entropy(model(x), y))


def test_er_ace_masks_absent_seen_classes_after_the_first_experience():
    torch.manual_seed(3)
    plugin, model = plugin_of("er-ace")
    x0, y0 = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    first = fake_strategy(model, x0, y0)
    loss = first.loss.clone()
    step(plugin, first)
    assert torch.equal(first.loss, loss)  # experience 0: plain cross-entropy, no replay
    x1, y1 = torch.randn(2, 3), torch.tensor([2, 2])
    later = fake_strategy(model, x1, y1, exp=1)
    plugin.before_backward(later)
    logits = model(x1).clone()
    logits[:, :2] = torch.finfo(torch.float32).min  # seen, absent from this batch: 0 and 1
    expected = F.cross_entropy(logits, y1) + F.cross_entropy(model(x0), y0)  # memory: all of experience 0
    assert torch.allclose(later.loss, expected)


def test_online_replay_joins_a_memory_minibatch_and_stores_only_incoming_samples():
    plugin = OnlineReplayPlugin(capacity=5, batch_size_mem=3)
    model = torch.nn.Linear(3, 4)
    first = fake_strategy(model, torch.randn(2, 3), torch.tensor([0, 1]))
    plugin.before_training_iteration(first)
    plugin.before_forward(first)
    assert len(first.mbatch[0]) == 2  # nothing stored yet
    plugin.after_training_iteration(first)
    second = fake_strategy(model, torch.randn(2, 3), torch.tensor([2, 3]))
    plugin.before_training_iteration(second)
    plugin.before_forward(second)
    assert [len(t) for t in second.mbatch] == [4, 4, 4] and second.mbatch[1][:2].tolist() == [2, 3]
    assert sorted(second.mbatch[1][2:].tolist()) == [0, 1]
    plugin.after_training_iteration(second)
    assert sorted(plugin.memory.tensors["y"][: len(plugin.memory)].tolist()) == [0, 1, 2, 3]
