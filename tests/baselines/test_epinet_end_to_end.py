"""EpiNet end to end on real MNIST: trained through an Avalanche strategy (the harness's
template with the EpiNet plugin), two experiences, then a state_dict round trip."""

from __future__ import annotations

import torch

from baselines.registry import get_strategy
from baselines.setup import StrategySetup
from benchmarks.runner import AccuracyPlugin, evaluate, seed_everything
from benchmarks.streams import split_mnist
from epinet.model import EpiNetModel


def test_epinet_learns_two_real_mnist_experiences_and_round_trips(real_mnist):
    bench = split_mnist(real_mnist, seed=0, n_experiences=2, task_labels=True, train_per_experience=2000)
    seed_everything(0)
    spec = get_strategy("epinet")
    accuracy = AccuracyPlugin()
    setup = StrategySetup(memory=200, batch_size=64, class_masks=bench.class_masks, plugins=[accuracy])
    strategy = spec.build(setup, spec.validate_options({}, setup.memory))
    for experience in bench.train_stream:
        strategy.train(experience)
    final = evaluate(strategy, bench.test_stream, accuracy)

    # 5 classes per task: chance is 0.2 on each experience.
    assert min(final) > 0.8, final
    model = strategy.model
    assert len(model.memory) == 200 and model.iterations == 2 * 32  # 2000 samples / 64 per batch

    clone = EpiNetModel(model.config, "mlp", 10)
    clone.load_state_dict(model.state_dict())
    x = bench.test_stream[0].tensors[0][:256]
    model.eval(), clone.eval()
    with torch.no_grad():
        assert torch.equal(model(x), clone(x))
