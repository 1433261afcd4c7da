"""Slow weights (``slow_decay``): an exponential moving average of EpiNet's weights answers at evaluation."""

import copy

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from epinet import EpiNetConfig, EpiNetModel
from epinet.slow_weights import SlowWeights

SMALL = dict(latent_dim=8, capacity=12, top_k=3, hidden_dim=16, replay_batch_size=4)


def small_model(**overrides):
    torch.manual_seed(0)
    return EpiNetModel(EpiNetConfig(**{**SMALL, **overrides}), "mlp", num_classes=4)


def batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.arange(n) % 4


def test_average_follows_the_warmed_up_rate_by_hand():
    layer = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(2.0)
    slow = SlowWeights({"layer": layer}, decay=0.5)
    for value in (12.0, 4.0, 0.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        slow.update({"layer": layer})
    # d_0 = min(0.5, 1/10) = 0.1: 0.1 * 2 + 0.9 * 12 = 11.0
    # d_1 = min(0.5, 2/11) = 2/11: (2/11) * 11 + (9/11) * 4 = 2 + 36/11 = 58/11
    # d_2 = min(0.5, 3/12) = 0.25: 0.25 * 58/11 + 0 = 14.5/11
    assert slow.averages("layer")[0].item() == pytest.approx(14.5 / 11)
    assert int(slow.updates) == 3 and slow.rate() == pytest.approx(min(0.5, 4 / 13))
    # The layer computed with the slow weight, not its own (0):
    assert slow.call("layer", layer, torch.ones(1, 1)).item() == pytest.approx(14.5 / 11)


def test_training_step_updates_slow_weights_and_evaluation_uses_them():
    model = small_model(slow_decay=0.9, consolidation_epochs=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    for _ in range(3):
        model.observe(x, y, 0, optimizer)
    assert len(model.memory) == 12  # full: 18 offered
    model.end_experience(optimizer, batch_size=4)  # one epoch over 12 memories: 3 steps
    assert int(model.slow.updates) == 3 + 3
    # A copy of the network holding the slow weights as its own computes what eval mode computes.
    twin = copy.deepcopy(model)
    twin.slow = None
    with torch.no_grad():
        for key, module in model.network.items():
            for p, w in zip(twin.network[key].parameters(), model.slow.averages(key)):
                p.copy_(w)
    model.eval(), twin.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), twin(x))
        assert not torch.allclose(model(x), model.train()(x))  # training computes with the fast weights


def test_slow_weights_are_buffers_saved_with_the_model_not_parameters():
    model = small_model(slow_decay=0.9)
    plain = small_model()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    model.observe(x, y, 0, optimizer)
    model.observe(x, y, 0, optimizer)
    restored = small_model(slow_decay=0.9)
    restored.load_state_dict(model.state_dict())
    model.eval(), restored.eval()
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))


def test_slow_weights_are_off_by_default_and_a_decay_of_one_is_refused():
    assert small_model().slow is None
    with pytest.raises(ValidationError, match="slow_decay"):
        EpiNetConfig(slow_decay=1.0)
