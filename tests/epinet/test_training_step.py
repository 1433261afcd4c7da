"""EpiNetModel's training step: ``observe`` in a plain loop, and the same step driven by
Avalanche through ``EpiNetPlugin``, must train identically."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from epinet import EpiNetConfig, EpiNetModel

pytest.importorskip("avalanche")

from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets  # noqa: E402
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset  # noqa: E402
from avalanche.core import SupervisedPlugin  # noqa: E402

from epinet.plugin import epinet_strategy  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:No loggers specified")

# The notebook's settings (v1), small; the v2 case below switches v2's mechanisms on.
SMALL = dict(
    preset="notebook", latent_dim=8, capacity=20, top_k=3, hidden_dim=16, num_experts=2, beta=0.5, replay_batch_size=5
)


def small_model(**overrides):
    torch.manual_seed(0)
    return EpiNetModel(EpiNetConfig(**{**SMALL, **overrides}), "mlp", num_classes=4)


class ReseedAndRecord(SupervisedPlugin):
    """Reseeds the global RNG before each iteration (the step's replay draw and random
    salience use it) and records the batches Avalanche trained on, per experience."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def before_training_exp(self, strategy, *args, **kwargs):
        self.batches.append([])

    def before_training_iteration(self, strategy, *args, **kwargs):
        torch.manual_seed(sum(map(len, self.batches)))
        self.batches[-1].append((strategy.mb_x.clone(), strategy.mb_y.clone(), strategy.mb_task_id.clone()))


def tiny_benchmark():
    g = torch.Generator().manual_seed(0)

    def dataset(classes):
        y = torch.tensor(classes).repeat(24 // len(classes))
        x = torch.randn(24, 1, 28, 28, generator=g) + y.view(-1, 1, 1, 1).float()
        return _make_taskaware_tensor_classification_dataset(x, y, task_labels=0)

    train = [dataset([0, 1]), dataset([2, 3])]
    return benchmark_from_datasets(train=train, test=train)


V2 = dict(
    response_weight=1.0,
    asymmetric=True,
    consolidation_epochs=2,
    salience="uniform",
    class_balanced=True,
    balance_origin=True,
    reconsolidate="both",
    vote_weight=0.3,
)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"salience": "random", "class_balanced": True, "reencode_every": 2}, V2],
    ids=["v1", "v1-cb", "v2"],
)
def test_avalanche_plugin_and_observe_train_identically(overrides):
    avalanche_model = small_model(**overrides)
    recorder = ReseedAndRecord()
    strategy = epinet_strategy(
        avalanche_model,
        torch.optim.SGD(avalanche_model.parameters(), lr=0.05),
        train_mb_size=8,
        eval_mb_size=8,
        train_epochs=1,
        plugins=[recorder],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for exp in tiny_benchmark().train_stream:
            strategy.train(exp)

    model = small_model(**overrides)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    step = 0
    for experience in recorder.batches:
        for x, y, t in experience:
            torch.manual_seed(step)
            model.observe(x, y, t, optimizer)
            step += 1
        model.end_experience(optimizer, 8)

    assert step == 6 and len(model.memory) == 20
    avalanche_state = avalanche_model.state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(value, avalanche_state[name]), name


def test_observe_backpropagates_main_loss_plus_replay_and_stores_the_batch():
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the losses can be recomputed
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 0, 1])

    expected = F.cross_entropy(model(x), y)  # empty memory: no replay term
    torch.testing.assert_close(model.observe(x, y, 0, optimizer), expected)
    assert model.iterations == 1 and len(model.memory) == 6
    assert model.memory.tau[:6].tolist() == [0.0] * 6  # stamped before the tick

    torch.manual_seed(1)
    xm, ym, _ = model.memory.sample(5)  # replay_batch_size memories
    expected = F.cross_entropy(model(x), y) + 0.5 * F.cross_entropy(model(xm), ym)
    torch.manual_seed(1)
    torch.testing.assert_close(model.observe(x, y, 0, optimizer), expected)
    assert model.iterations == 2 and len(model.memory) == 12
