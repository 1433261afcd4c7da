import warnings

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("avalanche")

from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets  # noqa: E402
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset  # noqa: E402
from avalanche.core import SupervisedPlugin  # noqa: E402
from avalanche.training.templates import SupervisedTemplate  # noqa: E402

from epinet import EpiNetConfig, EpiNetModel  # noqa: E402
from epinet.plugin import EpiNetPlugin, epinet_strategy  # noqa: E402

# evaluator=None makes Avalanche build a logger-less evaluator, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:No loggers specified")

N_PER_EXP, MB = 48, 16


def tiny_benchmark():
    g = torch.Generator().manual_seed(0)

    def dataset(classes):
        y = torch.tensor(classes).repeat(N_PER_EXP // len(classes))
        x = torch.randn(N_PER_EXP, 1, 28, 28, generator=g) + y.view(-1, 1, 1, 1).float()
        return _make_taskaware_tensor_classification_dataset(x, y, task_labels=0)

    train = [dataset([0, 1]), dataset([2, 3])]
    return benchmark_from_datasets(train=train, test=[dataset([0, 1]), dataset([2, 3])])


class LossRecorder(SupervisedPlugin):
    """Runs after EpiNetPlugin: sees the loss with the replay term added."""

    def __init__(self):
        super().__init__()
        self.records = []

    def before_backward(self, strategy, *args, **kwargs):
        ce = F.cross_entropy(strategy.mb_output, strategy.mb_y).item()
        self.records.append((strategy.loss.item(), ce, len(strategy.model.memory)))


class MaskingTemplate(SupervisedTemplate):
    """Stands in for the harness's task-incremental template."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mask_calls = []

    def mask_logits(self, logits, task_labels):
        self.mask_calls.append(task_labels.clone())
        return logits


class ReencodeSpy(EpiNetModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reencoded_at = []

    def reencode_memory(self, batch_size=512):
        self.reencoded_at.append(self.iterations)
        super().reencode_memory(batch_size)


ITERATIONS = 2 * (N_PER_EXP // MB)


@pytest.fixture(scope="module")
def trained():
    """One small two-experience run shared by the tests below (Avalanche runs are slow)."""
    torch.manual_seed(0)
    config = EpiNetConfig(
        preset="notebook",  # v1: recall and re-encoding on, which the spies below watch
        latent_dim=8,
        capacity=20,
        top_k=3,
        hidden_dim=16,
        num_experts=2,
        beta=0.5,
        replay_batch_size=5,
        reencode_every=2,
        reencode_every_experience=True,
        slow_decay=0.9,  # updated after each of Avalanche's optimizer steps (after_update)
    )
    model = ReencodeSpy(config, "mlp", 4)
    recorder = LossRecorder()
    strategy = epinet_strategy(
        model,
        torch.optim.SGD(model.parameters(), lr=0.05),
        train_mb_size=MB,
        eval_mb_size=MB,
        train_epochs=1,
        plugins=[recorder],
        template=MaskingTemplate,
    )
    bench = tiny_benchmark()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. Avalanche's incompatible-callback warning
        for exp in bench.train_stream:
            strategy.train(exp)
    return model, strategy, recorder, bench


def test_plugin_fills_memory_and_ticks_once_per_iteration(trained):
    model, *_ = trained
    assert model.iterations == ITERATIONS
    assert int(model.slow.updates) == ITERATIONS  # the notebook preset has no consolidation pass
    assert len(model.memory) == 20
    assert set(model.memory.y.tolist()) <= {0, 1, 2, 3}
    # tau is the clock at admission; batches were admitted at ticks 0..ITERATIONS-1
    assert set(model.memory.tau.tolist()) <= set(map(float, range(ITERATIONS)))


def test_replay_term_is_added_once_memory_is_non_empty(trained):
    *_, recorder, _ = trained
    first_loss, first_ce, first_size = recorder.records[0]
    assert first_size == 0 and first_loss == pytest.approx(first_ce)
    later = recorder.records[1:]
    assert len(later) == ITERATIONS - 1 and all(size > 0 for _, _, size in later)
    assert all(loss > ce + 1e-6 for loss, ce, _ in later)


def test_replay_batch_size_and_mask_logits_hook(trained):
    _, strategy, _, _ = trained
    # per iteration one salience call on the batch; from the 2nd on, one replay call on 5 memories
    sizes = [len(t) for t in strategy.mask_calls]
    assert sizes.count(MB) == ITERATIONS and sizes.count(5) == ITERATIONS - 1


def test_reencodes_every_n_iterations_and_after_each_experience(trained):
    model, *_ = trained
    assert model.reencoded_at == [2, 3, 4, 6, 6]
    model.eval()
    torch.testing.assert_close(model.memory.z, model.encode(model.memory.x).detach())


def test_eval_neither_ticks_nor_memorizes(trained):
    model, strategy, _, bench = trained
    before = {k: v.clone() for k, v in model.memory.state_dict().items()}
    strategy.eval(bench.test_stream)
    assert model.iterations == ITERATIONS
    assert all(torch.equal(v, model.memory.state_dict()[k]) for k, v in before.items())


def test_plugin_defines_only_avalanche_callbacks():
    names = {n for n in dir(EpiNetPlugin) if n.startswith(("before", "after"))}
    assert names <= {n for n in dir(SupervisedPlugin) if n.startswith(("before", "after"))}


def test_factory_rejects_non_epinet_models():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="needs an EpiNetModel"):
        epinet_strategy(
            model, torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=2, eval_mb_size=2, train_epochs=1
        )


def test_no_latent_hook_outlives_the_training_forward(trained):
    model, *_ = trained
    assert not model.encoder._forward_hooks
