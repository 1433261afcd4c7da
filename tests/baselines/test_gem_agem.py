"""GEM and A-GEM: the projections against hand-computed values and a direct solution of GEM's
primal, the per-experience memory, the vmapped constraint gradients against plain autograd,
and, on tiny data, that every projected training step really satisfies the constraints."""

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from scipy.optimize import minimize

import baselines.gradient_projection as gp
from baselines.gradient_projection import ExperienceMemory, agem_project, flat_grad, gem_project, trained_parameters
from baselines.registry import get_strategy
from baselines.replay import planned_bytes
from baselines.setup import StrategySetup
from benchmarks.streams import build_benchmark

MASKS = torch.tensor([[c // 2 == task for c in range(10)] for task in range(5)])

# ----------------------------------------------------------------------------- projections


def test_gem_projection_hand_values():
    g = torch.tensor([-1.0, 1.0])
    G = torch.tensor([[1.0, 0.0]])
    # dual: min 1/2 v^2 - v, v >= margin -> v = max(1, margin); g~ = g + v G
    assert torch.allclose(gem_project(g, G, margin=0.0, eps=0.0), torch.tensor([0.0, 1.0]))
    assert torch.allclose(gem_project(g, G, margin=0.5, eps=0.0), torch.tensor([0.0, 1.0]))
    assert torch.allclose(gem_project(g, G, margin=2.0, eps=0.0), torch.tensor([1.0, 1.0]))
    # two violated constraints: the projection onto the positive quadrant
    g2, G2 = torch.tensor([-1.0, -2.0, 3.0]), torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert torch.allclose(gem_project(g2, G2, margin=0.0, eps=0.0), torch.tensor([0.0, 0.0, 3.0]))
    # the default ridge (1e-3 on GG''s diagonal) moves the answer by about 1e-3
    assert torch.allclose(gem_project(g2, G2, margin=0.0), torch.tensor([0.0, 0.0, 3.0]), atol=3e-3)


def test_gem_projection_solves_the_primal():
    """margin 0: g~ = argmin ||z - g||^2 subject to G z >= 0 (the paper's eq. 8)."""
    torch.manual_seed(0)
    G, g = torch.randn(4, 12), torch.randn(12)
    g = g - 2 * G[0] * (G[0] @ g).abs() / (G[0] @ G[0])  # make sure a constraint is violated
    assert (G @ g < 0).any()
    z = gem_project(g, G, margin=0.0, eps=1e-9).double()
    primal = minimize(
        lambda z: ((z - g.double().numpy()) ** 2).sum(),
        g.double().numpy(),
        constraints={"type": "ineq", "fun": lambda z: G.double().numpy() @ z},
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert primal.success
    assert torch.allclose(z, torch.from_numpy(primal.x), atol=1e-4)
    assert (G.double() @ z >= -1e-6).all()


def test_agem_projection_hand_values():
    g, ref = torch.tensor([1.0, -2.0]), torch.tensor([0.0, 2.0])
    projected = agem_project(g, ref)  # g - (g.ref / ref.ref) ref = [1, -2] - (-4 / 4) [0, 2]
    assert torch.allclose(projected, torch.tensor([1.0, 0.0]))
    assert torch.dot(projected, ref) == 0
    agreeing = torch.tensor([1.0, 0.5])
    assert agem_project(agreeing, ref) is agreeing  # g.ref >= 0: untouched


# ----------------------------------------------------------------------------- memory


def test_memory_keeps_a_random_subset_of_each_experience():
    torch.manual_seed(0)
    memory = ExperienceMemory(per_experience=4)
    for e in range(3):
        x = torch.arange(10).float().view(10, 1) + 100 * e
        memory.add(x, torch.arange(10) + 10 * e, torch.full((10,), e))
    assert len(memory) == 12 and len(memory.groups) == 3
    for e, (x, y, t) in enumerate(memory.groups):
        assert len(set(y.tolist())) == 4 and all(10 * e <= v < 10 * e + 10 for v in y.tolist())
        assert torch.equal(x.view(-1), (y - 10 * e + 100 * e).float())  # rows stay together
        assert (t == e).all()
    assert memory.groups[0][1].tolist() != (memory.groups[1][1] - 10).tolist()  # not always the same picks
    assert memory.nbytes() == 12 * (4 + 8 + 8)
    x, y, t = memory.sample(5)
    assert len(set(y.tolist())) == 5 and torch.equal(x.view(-1), (y % 10 + 100 * (y // 10)).float())
    assert len(memory.sample(50)[0]) == 12  # at most what it holds


@pytest.mark.parametrize("masks", [None, MASKS])
def test_group_gradients_equal_one_backward_per_experience(masks):
    """One vmapped pass gives each experience's mean-loss gradient (a short experience padded),
    with the task-incremental mask applied as in training."""
    torch.manual_seed(1)
    setup = StrategySetup(mlp_width=16, class_masks=masks)
    strategy = setup.strategy(setup.classifier())
    memory = ExperienceMemory(per_experience=6)
    for e, n in enumerate((20, 20, 4)):  # the last experience has fewer samples than per_experience
        memory.add(torch.randn(n, 1, 28, 28), 2 * e + torch.randint(0, 2, (n,)), torch.full((n,), e))
    params = trained_parameters(strategy.model)
    G = memory.group_gradients(strategy, {k: p.detach() for k, p in params.items()})
    assert G.shape == (3, sum(p.numel() for p in params.values()))
    for row, (x, y, t) in zip(G, memory.groups):
        strategy.model.zero_grad()
        F.cross_entropy(strategy.mask_logits(strategy.model(x), t), y).backward()
        assert torch.allclose(row, flat_grad(params), atol=1e-6)


# ----------------------------------------------------------------------------- training


class StepGradient(SupervisedPlugin):
    """Records each step's gradient as it stands when this plugin's ``after_backward`` runs."""

    def __init__(self):
        super().__init__()
        self.grads = []

    def after_backward(self, strategy, **kwargs):
        self.grads.append(flat_grad(trained_parameters(strategy.model)).clone())


def build_around(name, bench, options=None, memory=20, **fields):
    """The registered strategy, with gradient spies just before and just after its plugin."""
    spec = get_strategy(name)
    setup = StrategySetup(
        memory=memory, batch_size=16, n_experiences=bench.n_experiences, class_masks=bench.class_masks, **fields
    )
    strategy = spec.build(setup, spec.validate_options(options or {}, setup.memory))
    plugin = gp.memory_plugin(strategy)
    before, after = StepGradient(), StepGradient()
    at = strategy.plugins.index(plugin)
    strategy.plugins[at : at + 1] = [before, plugin, after]
    return spec, strategy, plugin, before, after


@pytest.mark.parametrize("benchmark", ["split-mnist", "split-mnist-task"])
def test_gem_training_steps_satisfy_every_constraint(synthetic_mnist, benchmark):
    torch.manual_seed(0)
    bench = build_benchmark(benchmark, synthetic_mnist, seed=0, n_experiences=5)
    spec, strategy, plugin, before, after = build_around("gem", bench, {"gamma": 0.5}, lr=0.1, optimizer="sgd")
    assert spec.memory_bytes(strategy) == 0

    class Constraints(SupervisedPlugin):  # after ``after``: the parameters are still those of the backward
        def __init__(self):
            super().__init__()
            self.steps = []

        def after_backward(self, strategy, **kwargs):
            if plugin.memory.groups:
                params = trained_parameters(strategy.model)
                G = plugin.memory.group_gradients(strategy, {n: p.detach() for n, p in params.items()})
                self.steps.append((before.grads[-1], after.grads[-1], G))

    check = Constraints()
    strategy.plugins.insert(strategy.plugins.index(after) + 1, check)
    for k, experience in enumerate(bench.train_stream):
        strategy.train(experience)
        assert len(plugin.memory.groups) == k + 1 and len(plugin.memory) == 4 * (k + 1)  # 20 // 5 each
        assert set(plugin.memory.groups[k][1].tolist()) <= set(experience.tensors[1].tolist())
    steps = [-(-len(exp.tensors[1]) // 16) for exp in bench.train_stream]
    assert len(after.grads) == sum(steps) and len(check.steps) == sum(steps[1:])
    projected = 0
    for g, final, G in check.steps:
        if (G @ g < 0).any():
            projected += 1
            assert torch.allclose(final, gem_project(g, G, margin=0.5), atol=1e-6)
            dots = G @ final
            assert (dots > -1e-3 * (G @ g).abs().max()).all(), dots  # met, up to the QP's 1e-3 ridge
        else:
            assert torch.equal(final, g)
    assert projected == plugin.projected > 0
    assert spec.memory_bytes(strategy) == 20 * (28 * 28 * 4 + 8 + 8) == planned_bytes(None, 20, (1, 28, 28))


def test_agem_training_steps_do_not_oppose_the_reference(synthetic_mnist, monkeypatch):
    torch.manual_seed(0)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0, n_experiences=5)
    spec, strategy, plugin, before, after = build_around("agem", bench, lr=0.1, optimizer="sgd", replay_batch_size=6)
    drawn = []
    sample = ExperienceMemory.sample
    monkeypatch.setattr(ExperienceMemory, "sample", lambda self, n: drawn.append(sample(self, n)) or drawn[-1])

    class Reference(SupervisedPlugin):  # after ``after``: the parameters are still those of the backward
        def __init__(self):
            super().__init__()
            self.steps = []

        def after_backward(self, strategy, **kwargs):
            if plugin.memory.groups:
                x, y, t = drawn[-1]
                params = trained_parameters(strategy.model)
                loss = F.cross_entropy(strategy.mask_logits(strategy.model(x), t), y)
                ref = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(params.values()))])
                self.steps.append((before.grads[-1], after.grads[-1], ref))

    check = Reference()
    strategy.plugins.insert(strategy.plugins.index(after) + 1, check)
    for experience in bench.train_stream:
        strategy.train(experience)
    steps = [-(-len(exp.tensors[1]) // 16) for exp in bench.train_stream]
    assert len(after.grads) == sum(steps) and len(drawn) == len(check.steps) == sum(steps[1:])
    # 4 (= 20 // 5) samples per finished experience; a draw is capped by what the memory holds
    assert [len(y) for _, y, _ in drawn] == [4] * steps[1] + [6] * sum(steps[2:])
    assert all(len(set(x.view(len(x), -1).sum(1).tolist())) == len(x) for x, _, _ in drawn)  # distinct samples
    projected = 0
    for g, final, ref in check.steps:
        if torch.dot(g, ref) < 0:
            projected += 1
            assert torch.allclose(final, g - torch.dot(g, ref) / torch.dot(ref, ref) * ref, atol=1e-7)
            assert torch.dot(final, ref).abs() < 1e-5 * final.norm() * ref.norm()
        else:
            assert torch.equal(final, g)
    assert projected == plugin.projected > 0
    assert spec.memory_bytes(strategy) == 20 * (28 * 28 * 4 + 8 + 8)


def test_too_small_a_memory_is_refused():
    for name in ("gem", "agem"):
        spec = get_strategy(name)
        setup = StrategySetup(memory=10, n_experiences=20)
        with pytest.raises(ValueError, match=r"memory \(10\) must be at least the number of experiences \(20\)"):
            spec.build(setup, spec.validate_options({}, setup.memory))


def test_options():
    assert get_strategy("gem").validate_options({}, 100).gamma == 0.5
    assert get_strategy("gem").validate_options({"gamma": 0}, 100).gamma == 0
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        get_strategy("gem").validate_options({"gamma": -1}, 100)
    with pytest.raises(ValueError, match="unknown option 'gamma' for strategy 'agem'; known: none"):
        get_strategy("agem").validate_options({"gamma": 1}, 100)
