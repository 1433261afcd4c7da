"""GSS-Greedy: gradient products against per-sample autograd, the sequential replacement rule by
hand, the minibatch gate, and the replay schedule (``batch_num``)."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import nn

import baselines.gss
from baselines.gss import greedy_replace
from baselines.registry import get_strategy
from baselines.sample_grads import dots, dots_with, gradient_factors, mean_gradient, sq_norms
from baselines.setup import StrategySetup
from baselines.stream_memory import StreamReplayPlugin
from benchmarks.streams import build_benchmark

SPEC = get_strategy("gss")


def autograd_per_sample(model, x, y, masks=None):
    rows = []
    for i in range(len(x)):
        logits = model(x[i : i + 1])
        if masks is not None:
            logits = logits.masked_fill(~masks[i : i + 1], float("-inf"))
        grads = torch.autograd.grad(F.cross_entropy(logits, y[i : i + 1]), list(model.parameters()))
        rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows)


MODELS = {
    "mlp (layer factors)": lambda: StrategySetup(mlp_width=7).classifier(),
    "conv (vmap)": lambda: nn.Sequential(nn.Conv2d(1, 2, 5, stride=5), nn.ReLU(), nn.Flatten(), nn.Linear(50, 10)),
}


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
@pytest.mark.parametrize("masked", [False, True])
def test_gradient_products_equal_per_sample_autograd(make, masked):
    torch.manual_seed(0)
    model = make()
    x1, y1, x2, y2 = (
        torch.randn(5, 1, 28, 28),
        torch.randint(0, 10, (5,)),
        torch.randn(3, 1, 28, 28),
        torch.randint(0, 2, (3,)),
    )
    m1 = m2 = None
    if masked:  # task-incremental: classes 0-1 or 2-3 visible
        m1 = torch.zeros(5, 10, dtype=torch.bool)
        m1[torch.arange(5), y1] = True
        m1[torch.arange(5), y1 ^ 1] = True
        m2 = torch.zeros(3, 10, dtype=torch.bool)
        m2[:, :2] = True
    g1, g2 = autograd_per_sample(model, x1, y1, m1), autograd_per_sample(model, x2, y2, m2)
    f1, f2 = gradient_factors(model, x1, y1, m1), gradient_factors(model, x2, y2, m2)
    torch.testing.assert_close(dots(f1, f2), g1 @ g2.T, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(sq_norms(f1), g1.pow(2).sum(1), rtol=1e-4, atol=1e-6)
    mean = mean_gradient(f1)
    torch.testing.assert_close(sum(m.pow(2).sum() for m in mean), g1.mean(0).pow(2).sum(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(dots_with(mean, f2), g2 @ g1.mean(0), rtol=1e-4, atol=1e-6)
    assert all(p.grad is None for p in model.parameters())  # the model's own gradients untouched


def test_greedy_replacement_by_hand():
    scores = torch.tensor([1.0, 1.0, 2.0])
    # cumulative [1, 2, 4]: u = 0.6 -> 2.4 -> slot 2, kept if 0.7 < 2 / (2 + 0.5): replaced, scores [1, 1, 0.5];
    # u = 0.1 -> 0.25 -> slot 0, 0.5 < 1 / (1 + 1.5) fails: kept;
    # cumulative [1, 2, 2.5]: u = 0.95 -> 2.375 -> slot 2, 0.1 < 0.5 / (0.5 + 0.2): replaced again.
    uniforms = torch.tensor([[0.6, 0.7], [0.1, 0.5], [0.95, 0.1]])
    assert greedy_replace(scores, torch.tensor([0.5, 1.5, 0.2]), uniforms) == {2: 2}
    assert scores.tolist() == [1.0, 1.0, 2.0]  # the caller writes the scores


def test_greedy_replacement_draws_slots_in_proportion_to_their_scores():
    torch.manual_seed(0)
    n = 8000
    u = torch.rand(n, 2)
    u[:, 1] = 0.0  # always replace: the slot is the only draw
    scores = torch.tensor([1.0, 3.0])
    counts = [0, 0]
    for i in range(n):  # one candidate at a time from the same scores
        (slot,) = greedy_replace(scores, torch.tensor([1.0]), u[i : i + 1])
        counts[slot] += 1
    assert abs(counts[1] / n - 0.75) < 0.015  # 3 standard deviations


def fake_strategy(model):
    return SimpleNamespace(model=model, class_masks=None, mask_logits=lambda logits, t: logits)


def test_selection_fills_then_replaces_only_below_the_gate(monkeypatch):
    """A zero linear model: a sample's gradient is (1/3 - e_y) (x, 1)^T, so two samples with the
    same x and labels 0 and 1 have cosine (-1/3) / (2/3) = -0.5: score 0.5, under the gate."""
    strategy = SPEC.build(StrategySetup(memory=4, batch_size=3), SPEC.validate_options({"gss_minibatch_size": 8}, 4))
    plugin = next(p for p in strategy.plugins if isinstance(p, StreamReplayPlugin))
    memory = plugin.memory
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 3))
    nn.init.zeros_(model[1].weight), nn.init.zeros_(model[1].bias)
    calls = []

    def replace(scores, candidates, uniforms):
        calls.append((scores.clone(), candidates.clone()))
        return {0: 1}  # slot 0 takes the second candidate

    monkeypatch.setattr(baselines.gss, "greedy_replace", replace)
    x = torch.tensor([[1.0, 0.0]]).repeat(3, 1)

    def offer(label, tag):
        plugin.select(fake_strategy(model), x + tag, torch.full((3,), label), torch.zeros(3, dtype=torch.long))

    offer(0, 0.0)  # empty memory: the three enter with score 0.1
    assert memory.seen == 3 and len(memory) == 3 and torch.equal(memory.tensors["score"][:3], torch.full((3,), 0.1))
    offer(1, 0.0)  # c = 0.5: one slot left for the first sample; the other two are candidates
    torch.testing.assert_close(memory.tensors["score"], torch.tensor([0.5, 0.1, 0.1, 0.5]))
    ((scores, candidates),) = calls
    torch.testing.assert_close(scores, torch.tensor([0.1, 0.1, 0.1, 0.5]))
    torch.testing.assert_close(candidates, torch.tensor([0.5, 0.5]))
    assert memory.tensors["y"].tolist() == [1, 0, 0, 1] and memory.seen == 6
    before = {k: v.clone() for k, v in memory.tensors.items()}
    offer(1, 0.0)  # aligned with memory items of label 1 (cosine 1): c = 2, no candidate
    assert len(calls) == 1 and memory.seen == 9
    assert all(torch.equal(before[k], memory.tensors[k]) for k in before)


class Steps(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.batches = []

    def before_backward(self, strategy, **kwargs):
        self.batches.append(strategy.mbatch[0].clone())


@pytest.mark.parametrize("batch_num", [1, 3])
def test_each_incoming_minibatch_trained_batch_num_times_with_fresh_replay(synthetic_mnist, batch_num):
    torch.manual_seed(0)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0, n_experiences=5)
    steps = Steps()
    setup = StrategySetup(memory=30, batch_size=10, replay_batch_size=4, mlp_width=16, plugins=[steps])
    strategy = SPEC.build(setup, SPEC.validate_options({"batch_num": batch_num}, 30))
    strategy.train(bench.train_stream[0])
    strategy.train(bench.train_stream[1])
    x0, x1 = bench.train_stream[0].tensors[0], bench.train_stream[1].tensors[0]
    n_batches = len(x0) // 10 + 1 + len(x1) // 10 + 1  # 54 images: 5 minibatches of 10 and one of 4
    assert len(steps.batches) == batch_num * n_batches
    memory = next(p for p in strategy.plugins if isinstance(p, StreamReplayPlugin)).memory
    assert memory.seen == len(x0) + len(x1) and len(memory) == 30  # offered once per incoming minibatch
    for b in range(n_batches):
        group = steps.batches[b * batch_num : (b + 1) * batch_num]
        n_in = len(group[0]) - (min(4, b * 10) if b else 0)
        if b == 0:
            assert [len(x) for x in group] == [10] * batch_num  # nothing stored yet
            continue
        assert all(torch.equal(x[:n_in], group[0][:n_in]) for x in group)  # the same incoming minibatch
        replayed = torch.cat([x[n_in:] for x in group]).flatten(1)
        if b >= 3:  # memory of 30: three slices of 4 are disjoint (Mammoth's fathom)
            assert len(replayed.unique(dim=0)) == len(replayed) == 4 * batch_num


def test_runs_on_task_incremental_and_reports_bytes(synthetic_mnist):
    from benchmarks.config import RunConfig
    from benchmarks.runner import run

    config = RunConfig(benchmark="split-mnist-task", strategy="gss", memory=30, batch_size=16, replay_batch_size=8)
    record = run(config, data=synthetic_mnist, progress=False)
    assert record["metrics"]["memory_bytes"] == 30 * (28 * 28 * 4 + 16 + 4)  # x, y, t and a float32 score
    assert min(record["accuracy_matrix"][-1]) > 0.5


def test_options():
    options = SPEC.validate_options({}, 200)
    assert options.gss_minibatch_size is None and options.batch_num == 1
    assert SPEC.planned_bytes(options, 200, (1, 28, 28)) == 200 * (28 * 28 * 4 + 16 + 4)
    with pytest.raises(ValueError, match="unknown option 'minibatch_size'"):
        SPEC.validate_options({"minibatch_size": 10}, 200)
    with pytest.raises(ValueError, match="greater than 0"):
        SPEC.validate_options({"batch_num": 0}, 200)
