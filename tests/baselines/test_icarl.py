"""iCaRL: herding order, the distillation loss, the exemplar memory, the nearest-mean output."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin

from baselines.icarl import herding
from baselines.registry import get_strategy
from baselines.setup import StrategySetup
from benchmarks.streams import build_benchmark

SPEC = get_strategy("icarl")


def build(plugins=(), options=None, **setup_fields):
    setup = StrategySetup(**{"batch_size": 16, "mlp_width": 32, **setup_fields}, plugins=list(plugins))
    return SPEC.build(setup, SPEC.validate_options(options or {}, setup.memory))


def icarl_plugin(strategy):
    return next(p for p in strategy.plugins if hasattr(p, "exemplars"))


def test_herding_follows_the_running_mean_by_hand():
    # mean 3.25: 2 first (closest); then 1 ((2+1)/2 = 1.5 is 1.75 away; 1.0 and 6.0 are farther);
    # then 10 ((3+10)/3 = 4.33, 1.08 away; (3+0)/3 = 1 is 2.25 away); then 0.
    features = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    assert herding(features, 3).tolist() == [2, 1, 3]
    assert herding(features, 9).tolist() == [2, 1, 3, 0]  # at most every sample, each once


def test_herding_matches_mammoths_loop():
    torch.manual_seed(0)
    features = F.normalize(torch.randn(50, 6), dim=1)
    mean, running, chosen, feats = features.mean(0, keepdim=True), torch.zeros(1, 6), [], features.clone()
    for k in range(1, 21):  # Mammoth's fill_buffer: cost, argmin, then push the chosen one away
        i = int((mean - (feats + running) / k).norm(2, 1).argmin())
        chosen.append(i)
        running += feats[i : i + 1]
        feats[i] += 1e6
    assert herding(features, 20).tolist() == chosen


def test_loss_is_bce_over_seen_classes_with_distilled_old_targets():
    strategy = build(n_classes=6)
    plugin = icarl_plugin(strategy)
    torch.manual_seed(1)
    plugin.old_classes = torch.tensor([True, True, False, False, False, False])
    plugin.new_classes = torch.tensor([False, False, True, True, False, False])
    plugin.old_net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 6))
    x, logits, y = torch.randn(5, 4), torch.randn(5, 6), torch.tensor([2, 3, 0, 3, 1])
    state = SimpleNamespace(device="cpu", mb_x=x, mb_y=y, mb_raw_output=logits, model=strategy.model, loss=None)
    plugin.before_backward(state)

    old = torch.sigmoid(plugin.old_net(x))  # classes 0, 1: the previous model's outputs
    expected = 0.0
    for i in range(5):
        for c in range(4):  # classes 4, 5 are not seen yet: no term
            q = old[i, c] if c < 2 else float(y[i] == c)
            p = torch.sigmoid(logits[i, c])
            expected -= q * torch.log(p) + (1 - q) * torch.log(1 - p)
    torch.testing.assert_close(state.loss, expected / 20)


def test_wd_reg_adds_mammoths_l2_penalty():
    losses = {}
    for wd in (0.0, 0.5):
        torch.manual_seed(0)
        strategy = build(n_classes=4, options={"wd_reg": wd})
        plugin = icarl_plugin(strategy)
        plugin.new_classes[:2] = True
        state = SimpleNamespace(
            device="cpu", mb_x=None, mb_y=torch.tensor([0, 1]), mb_raw_output=torch.zeros(2, 4), model=strategy.model
        )
        plugin.before_backward(state)
        losses[wd] = state.loss
    l2 = sum(p.pow(2).sum() for p in strategy.model.parameters())
    torch.testing.assert_close(losses[0.5] - losses[0.0], 0.5 * l2)


class Seen(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.trained, self.outputs = [], []

    def before_training_exp(self, strategy, **kwargs):
        self.trained.append([])

    def before_forward(self, strategy, **kwargs):
        self.trained[-1].append(strategy.mb_x.clone())

    def after_eval_iteration(self, strategy, **kwargs):
        self.outputs.append((strategy.mb_x, strategy.mb_task_id, strategy.mb_raw_output.clone(), strategy.mb_output))


@pytest.mark.parametrize("benchmark", ["split-mnist", "split-mnist-task"])
def test_exemplars_herded_per_class_within_budget_and_nme_at_eval(synthetic_mnist, benchmark):
    torch.manual_seed(0)
    bench = build_benchmark(benchmark, synthetic_mnist, seed=0, n_experiences=5)
    seen = Seen()
    strategy = build([seen], memory=20, class_masks=bench.class_masks)
    plugin, model = icarl_plugin(strategy), strategy.model
    strategy.train(bench.train_stream[0])
    x0, y0, _ = bench.train_stream[0].tensors
    first = {c: plugin.exemplars[c][0].clone() for c in (0, 1)}
    assert {c: len(v) for c, v in first.items()} == {0: 10, 1: 10}  # 20 // 2 classes
    for c, xs in first.items():  # the herding of the class's features, in order
        feats = model.features(x0[y0 == c]).detach()
        assert torch.equal(xs, x0[y0 == c][herding(feats, 10)])

    strategy.train(bench.train_stream[1])
    assert {c: len(v[0]) for c, v in plugin.exemplars.items()} == {0: 5, 1: 5, 2: 5, 3: 5}  # 20 // 4
    for c in (0, 1):  # old classes keep the first of their herding order
        assert torch.equal(plugin.exemplars[c][0], first[c][:5])
    n1 = len(bench.train_stream[1].tensors[1])
    assert sum(len(x) for x in seen.trained[1]) == n1 + 20  # the experience's data and the exemplars

    bytes_ = 20 * (28 * 28 * 4 + 16) + 4 * sum(p.numel() for p in model.parameters()) + 10 * 32 * 4
    assert SPEC.memory_bytes(strategy) == bytes_  # exemplars, previous model, class means

    strategy.eval(bench.test_stream[:2])
    model.eval()
    with torch.no_grad():
        means = torch.stack([F.normalize(model.features(plugin.exemplars[c][0]).mean(0), dim=0) for c in range(4)])
        for x, t, raw, out in seen.outputs:
            expected = -(model.features(x)[:, None] - means[None]).pow(2).sum(2)
            torch.testing.assert_close(raw[:, :4], expected, rtol=0, atol=1e-5)
            assert (raw[:, 4:] == torch.finfo(raw.dtype).min).all()  # no exemplars: ranked last
            assert torch.equal(out, strategy.mask_logits(raw, t))  # the harness's task mask after


def test_accuracy_measures_the_nearest_mean_classifier(synthetic_mnist):
    from benchmarks.config import RunConfig
    from benchmarks.runner import run

    record = run(
        RunConfig(benchmark="split-mnist", strategy="icarl", memory=20, batch_size=16, n_experiences=2),
        data=synthetic_mnist,
        progress=False,
    )
    assert record["accuracy_matrix"][0][0] > 0.9 and record["accuracy_matrix"][0][1] == 0.0
    assert min(record["accuracy_matrix"][1]) > 0.5


def test_a_class_seen_again_is_refused(synthetic_mnist):
    bench = build_benchmark("permuted-mnist", synthetic_mnist, seed=0, n_experiences=2)
    strategy = build(memory=20)
    strategy.train(bench.train_stream[0])
    with pytest.raises(ValueError, match=r"icarl needs every class in one experience only.*experience 1"):
        strategy.train(bench.train_stream[1])


def test_options_are_checked():
    assert SPEC.validate_options({}, 200).wd_reg == 0.0
    with pytest.raises(ValueError, match="unknown option 'softmax_temp'"):
        SPEC.validate_options({"softmax_temp": 2.0}, 200)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        SPEC.validate_options({"wd_reg": -1.0}, 200)
    assert SPEC.planned_bytes(SPEC.validate_options({}, 200), 200, (1, 28, 28)) == 200 * (28 * 28 * 4 + 16)


def test_raw_features_as_the_2020_code(synthetic_mnist):
    """normalise_features false: herding, class means and distances use the backbone's raw
    features (the DER paper's Mammoth), not unit vectors."""
    torch.manual_seed(1)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0, n_experiences=5)
    seen = Seen()
    strategy = build([seen], options={"normalise_features": False}, memory=20)
    plugin, model = icarl_plugin(strategy), strategy.model
    strategy.train(bench.train_stream[0])
    x0, y0, _ = bench.train_stream[0].tensors
    with torch.no_grad():
        raw = model[0](x0[y0 == 0])
        assert torch.equal(model.features(x0[y0 == 0]), raw) and not torch.allclose(raw.norm(dim=1), torch.ones(1))
        assert torch.equal(plugin.exemplars[0][0], x0[y0 == 0][herding(raw, 10)])
        mean = model[0](plugin.exemplars[0][0]).mean(0)
        torch.testing.assert_close(model.class_means[0], mean)
