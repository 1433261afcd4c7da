"""SI, online EWC and LwF against direct transcriptions of their reference code (Mammoth's
``si.py`` and ``ewc_on.py`` of the DER paper, the LwF loss written out), on tiny generated data."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin

from baselines.registry import get_strategy
from baselines.regularisers import HarnessLwFPlugin, OnlineEWCPlugin, SIPlugin
from baselines.setup import StrategySetup
from benchmarks.streams import build_benchmark


class BatchRecorder(SupervisedPlugin):
    """Each training step's minibatch, per experience."""

    def __init__(self):
        super().__init__()
        self.steps: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = []

    def before_training_exp(self, strategy, **kwargs):
        self.steps.append([])

    def before_forward(self, strategy, **kwargs):
        self.steps[-1].append((strategy.mb_x.clone(), strategy.mb_y.clone(), strategy.mb_task_id.clone()))


def build(name, options, bench, **setup_fields):
    torch.manual_seed(0)
    recorder = BatchRecorder()
    fields = dict(n_classes=10, batch_size=16, class_masks=bench.class_masks, plugins=[recorder]) | setup_fields
    setup = StrategySetup(**fields)
    spec = get_strategy(name)
    strategy = spec.build(setup, spec.validate_options(options, setup.memory))
    return strategy, recorder


def plugin_of(strategy, cls):
    return next(p for p in strategy.plugins if isinstance(p, cls))


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().flatten() for t in tensors])


@pytest.fixture(scope="module")
def split(synthetic_mnist):
    return build_benchmark("split-mnist", synthetic_mnist, seed=0, n_experiences=5)


@pytest.fixture(scope="module")
def split_task(synthetic_mnist):
    return build_benchmark("split-mnist-task", synthetic_mnist, seed=0, n_experiences=5)


# ----------------------------------------------------------------------------- SI


def mammoth_si(model, steps_per_exp, lr, c, xi):
    """Mammoth's models/si.py (2020) transcribed: SGD, loss + c * penalty, clip_grad_value_ 1,
    small_omega += lr * grad^2; end_task updates big omega and the checkpoint."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    get_params = lambda: torch.cat([p.flatten() for p in model.parameters()])  # noqa: E731
    checkpoint = get_params().data.clone()
    big_omega, small_omega = None, 0
    for steps in steps_per_exp:
        for x, y, _ in steps:
            opt.zero_grad()
            penalty = 0.0 if big_omega is None else (big_omega * (get_params() - checkpoint) ** 2).sum()
            loss = F.cross_entropy(model(x), y) + c * penalty
            loss.backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), 1)
            opt.step()
            small_omega += lr * torch.cat([p.grad.flatten() for p in model.parameters()]) ** 2
        if big_omega is None:
            big_omega = torch.zeros_like(get_params())
        big_omega += small_omega / ((get_params().data - checkpoint) ** 2 + xi)
        checkpoint = get_params().data.clone()
        small_omega = 0
    return big_omega, checkpoint


def test_si_matches_mammoth(split):
    lr, c, xi = 0.1, 1.0, 0.9
    strategy, recorder = build("si", {"c": c, "xi": xi}, split, optimizer="sgd", lr=lr)
    reference_model = copy.deepcopy(strategy.model)
    for experience in list(split.train_stream)[:3]:
        strategy.train(experience)
    big_omega, checkpoint = mammoth_si(reference_model, recorder.steps, lr, c, xi)

    plugin = plugin_of(strategy, SIPlugin)
    torch.testing.assert_close(flat(strategy.model.parameters()), flat(reference_model.parameters()))
    torch.testing.assert_close(flat(plugin.big_omega), big_omega)
    torch.testing.assert_close(flat(plugin.anchor), checkpoint)
    assert big_omega.abs().sum() > 0 and not flat(plugin.small_omega).any()  # reset after the experience
    n_params = sum(p.numel() for p in strategy.model.parameters())
    assert get_strategy("si").memory_bytes(strategy) == 3 * 4 * n_params


def test_si_clips_gradients_and_uses_the_optimisers_lr(split):
    """Adam does not change the measure: small omega is setup.lr * clipped grad^2."""
    strategy, _ = build("si", {}, split, optimizer="adam", lr=0.01)
    seen = []

    class Grads(SupervisedPlugin):
        def after_update(self, strategy, **kwargs):
            seen.append(flat(p.grad for p in strategy.model.parameters()))

    strategy.plugins.append(Grads())
    plugin = plugin_of(strategy, SIPlugin)
    plugin.before_training_exp(strategy)  # small omega before training, to read it mid-experience
    omegas = []
    plugin_after = plugin.after_training_exp
    plugin.after_training_exp = lambda s, **k: (omegas.append(flat(plugin.small_omega).clone()), plugin_after(s, **k))
    strategy.train(split.train_stream[0])
    assert seen and max(g.abs().max() for g in seen) <= 1.0
    torch.testing.assert_close(omegas[0], 0.01 * sum(g**2 for g in seen))


# ----------------------------------------------------------------------------- online EWC


def mammoth_fisher(model, x, y, batch_size, mask=None):
    """Mammoth's ewc_on.end_task transcribed: one backward per sample of log p(y|x)."""
    params = list(model.parameters())
    fish = torch.zeros(sum(p.numel() for p in params))
    for i in range(len(y)):
        model.zero_grad()
        output = model(x[i : i + 1])
        if mask is not None:
            output = output.masked_fill(~mask[i : i + 1], float("-inf"))
        loss = -F.nll_loss(F.log_softmax(output, dim=1), y[i : i + 1], reduction="none")
        exp_cond_prob = torch.mean(torch.exp(loss.detach().clone()))
        torch.mean(loss).backward()
        fish += exp_cond_prob * torch.cat([p.grad.flatten() for p in params]) ** 2
    return fish / (math.ceil(len(y) / batch_size) * batch_size)


@pytest.mark.parametrize(
    "benchmark, backbone, chunk_bytes",
    [
        ("split", "mlp", None),
        ("split_task", "mlp", None),
        ("split", "mlp", 1),  # one sample per chunk
        ("split_task", "cnn", None),  # convolutions through torch.func, the head in closed form
        ("split", "cnn", 1),
    ],
)
def test_online_ewc_fisher_matches_mammoth(request, benchmark, backbone, chunk_bytes):
    bench = request.getfixturevalue(benchmark)
    gamma, e_lambda = 0.7, 5.0
    options = {"e_lambda": e_lambda, "gamma": gamma}
    strategy, _ = build("ewc-online", options, bench, batch_size=10, backbone=backbone)
    plugin = plugin_of(strategy, OnlineEWCPlugin)
    if chunk_bytes:
        plugin.chunk_bytes = chunk_bytes
    expected = None
    for experience in list(bench.train_stream)[:2]:
        strategy.train(experience)
        x, y, t = experience.tensors
        mask = None if bench.class_masks is None else bench.class_masks[t]
        new = mammoth_fisher(copy.deepcopy(strategy.model).eval(), x, y, batch_size=10, mask=mask)
        expected = new if expected is None else gamma * expected + new
        torch.testing.assert_close(flat(plugin.fisher), expected, rtol=1e-4, atol=1e-9)
        torch.testing.assert_close(flat(plugin.anchor), flat(strategy.model.parameters()), rtol=0, atol=0)
    assert expected.abs().sum() > 0


def test_online_ewc_penalty_is_lambda_times_fisher_weighted_distance(split):
    strategy, _ = build("ewc-online", {"e_lambda": 3.0}, split)
    plugin = plugin_of(strategy, OnlineEWCPlugin)
    strategy.train(split.train_stream[0])
    with torch.no_grad():
        for p in strategy.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    strategy.loss = torch.zeros(())
    plugin.before_backward(strategy)
    params = flat(strategy.model.parameters())
    expected = 3.0 * (flat(plugin.fisher) * (params - flat(plugin.anchor)) ** 2).sum()
    torch.testing.assert_close(strategy.loss, expected)
    assert get_strategy("ewc-online").memory_bytes(strategy) == 2 * 4 * len(params)


def test_online_ewc_fisher_draws_nothing_from_the_global_random_stream(split):
    strategy, _ = build("ewc-online", {}, split)
    plugin = plugin_of(strategy, OnlineEWCPlugin)
    compute, unchanged = plugin.fisher_information, []

    def fisher_information(strategy):
        state = torch.get_rng_state()
        fisher = compute(strategy)
        unchanged.append(torch.equal(torch.get_rng_state(), state))
        return fisher

    plugin.fisher_information = fisher_information
    strategy.train(split.train_stream[0])
    assert unchanged == [True]


# ----------------------------------------------------------------------------- LwF


def kd(student, teacher, temperature):
    """The paper's L_old minus the teacher's entropy: sum q log q - sum q log p, batch mean."""
    q = F.softmax(teacher / temperature, dim=1)
    log_p = F.log_softmax(student / temperature, dim=1)
    return (q * (q.log() - log_p)).sum(1).mean()


def lwf_penalty_of(strategy, x):
    plugin = plugin_of(strategy, HarnessLwFPlugin)
    logits = strategy.model(x)
    strategy.mb_raw_output, strategy.mbatch = logits, [x, None, None]
    strategy.loss = torch.zeros(())
    plugin.before_backward(strategy)
    return strategy.loss, logits, plugin.lwf.prev_model(x)


def test_lwf_class_incremental_distills_the_seen_classes(split):
    strategy, _ = build("lwf", {"alpha": 0.5, "temperature": 3.0}, split)
    for experience in list(split.train_stream)[:2]:
        strategy.train(experience)
    x = split.train_stream[2].tensors[0][:8]
    loss, logits, teacher = lwf_penalty_of(strategy, x)
    seen = [0, 1, 2, 3]  # the classes of experiences 0 and 1
    torch.testing.assert_close(loss, 0.5 * kd(logits[:, seen], teacher[:, seen], 3.0))
    assert not teacher.requires_grad and not plugin_of(strategy, HarnessLwFPlugin).lwf.prev_model.training


def test_lwf_task_incremental_distills_each_earlier_task(split_task):
    strategy, _ = build("lwf", {}, split_task)
    for experience in list(split_task.train_stream)[:3]:
        strategy.train(experience)
    x = split_task.train_stream[3].tensors[0][:8]
    loss, logits, teacher = lwf_penalty_of(strategy, x)
    expected = sum(kd(logits[:, [2 * k, 2 * k + 1]], teacher[:, [2 * k, 2 * k + 1]], 2.0) for k in range(3))
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, expected)
    n_params = sum(p.numel() for p in strategy.model.parameters())
    assert get_strategy("lwf").memory_bytes(strategy) == 4 * n_params  # the teacher


def test_lwf_trains_without_nan_on_task_incremental(split_task):
    strategy, _ = build("lwf", {"alpha": 1.0}, split_task)
    for experience in split_task.train_stream:
        strategy.train(experience)
    assert all(torch.isfinite(p).all() for p in strategy.model.parameters())


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "strategy, options, message",
    [
        ("si", {"c": 0}, "greater than 0"),
        ("si", {"xi": -1}, "greater than 0"),
        ("ewc-online", {"gamma": 1.5}, "less than or equal to 1"),
        ("ewc-online", {"gamma": 0}, "greater than 0"),
        ("ewc-online", {"e_lambda": 0}, "greater than 0"),
        ("lwf", {"temperature": 0}, "greater than 0"),
        ("lwf", {"alpha": -1}, "greater than or equal to 0"),
        ("ewc-online", {"lambda": 1}, "unknown option 'lambda'"),
    ],
)
def test_bad_options_are_refused(strategy, options, message):
    with pytest.raises(ValueError, match=message):
        get_strategy(strategy).validate_options(options, memory=10)


def test_fisher_closed_form_survives_an_in_place_activation_after_a_linear_layer():
    from baselines.regularisers import PerSampleFisher

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 7), torch.nn.ReLU(inplace=True), torch.nn.Linear(7, 4)
    ).eval()
    x, y = torch.randn(9, 1, 3, 4), torch.randint(0, 4, (9,))
    fisher = PerSampleFisher(model, None)
    fisher.add(x[:5], y[:5], torch.zeros(5, dtype=torch.long))
    fisher.add(x[5:], y[5:], torch.zeros(4, dtype=torch.long))
    expected = mammoth_fisher(model, x, y, batch_size=1)  # divided by 9, the number of samples
    torch.testing.assert_close(flat(fisher.total) / 9, expected)
