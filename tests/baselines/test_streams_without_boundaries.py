"""Streams without experience boundaries (the online protocol, the task-free blurry stream),
end to end on tiny generated data: every strategy runs or is refused with its reason, and no
boundary signal reaches the strategy."""

from __future__ import annotations

import warnings

import pytest
from avalanche.core import SupervisedPlugin

import benchmarks.runner
from baselines.registry import get_strategy, known_strategies
from benchmarks.config import ConfigError, make_run_config
from benchmarks.runner import run

pytestmark = pytest.mark.filterwarnings("ignore")

PROTOCOLS = {"online split-mnist": ("split-mnist", True), "split-mnist-blurry": ("split-mnist-blurry", False)}
# 20 training samples per experience: 2 mini-experiences of 10 each, 10 in the whole stream
TINY = dict(seed=0, train_per_experience=20, eval_batch_size=50, memory=20)


def _run(synthetic_root, **fields):
    config = make_run_config(**{**TINY, **fields}, data_root=str(synthetic_root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(config, progress=False)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize("strategy", known_strategies())
def test_every_strategy_runs_or_is_not_applicable_with_its_reason(synthetic_root, strategy, protocol):
    benchmark, online = PROTOCOLS[protocol]
    spec = get_strategy(strategy)
    reason = spec.boundary_need(spec.validate_options({}, TINY["memory"]))
    if reason is None:
        record = _run(synthetic_root, benchmark=benchmark, strategy=strategy, online=online)
        assert len(record["accuracy_matrix"]) == 5 and all(len(row) == 5 for row in record["accuracy_matrix"])
        assert record["config"]["batch_size"] == 10
    else:
        with pytest.raises(ConfigError, match="not applicable") as refused:
            make_run_config(benchmark=benchmark, strategy=strategy, online=online)
        assert reason in str(refused.value) and len(str(refused.value).splitlines()) == 1


def test_replay_runs_without_boundaries_as_online_er(synthetic_root):
    record = _run(synthetic_root, benchmark="split-mnist-blurry", strategy="replay", strategy_options={"online": True})
    assert record["metrics"]["memory_bytes"] > 0


class Spy(SupervisedPlugin):
    """Every callback the strategy's plugins receive, in order, with the experience's view."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []
        self.experiences: list[tuple] = []

    def __getattribute__(self, name):
        if name.startswith(("before_", "after_")):
            calls = object.__getattribute__(self, "calls")

            def record(strategy, **kwargs):
                calls.append(name)
                if name == "before_training_exp":
                    exp = strategy.experience
                    object.__getattribute__(self, "experiences").append(
                        (
                            exp.current_experience,
                            len(exp),
                            frozenset(vars(exp)),
                            frozenset(exp.tensors[2].tolist()),
                            strategy.clock.train_exp_counter,
                        )
                    )

            return record
        return object.__getattribute__(self, name)


@pytest.fixture
def spy(monkeypatch):
    spies: list[Spy] = []
    real = benchmarks.runner.strategy_setup

    def strategy_setup(config, bench, plugins, device="cpu"):
        spies.append(Spy())
        return real(config, bench, [*plugins, spies[-1]], device)

    monkeypatch.setattr(benchmarks.runner, "strategy_setup", strategy_setup)
    return spies


@pytest.mark.parametrize("strategy", ["naive", "derpp", "epinet"])
def test_no_boundary_signal_reaches_a_strategy_in_the_task_free_stream(synthetic_root, spy, strategy):
    # 25 samples per experience, 125 in all: 13 mini-experiences of 10 (the last of 5), evaluated
    # after mini-experiences 3, 5, 8, 10, 13 (where each experience's last sample lies)
    record = _run(synthetic_root, benchmark="split-mnist-blurry", strategy=strategy, **{"train_per_experience": 25})
    assert len(record["accuracy_matrix"]) == 5
    (plugin,) = spy
    # only training callbacks: the evaluations at the original boundaries ran on another template
    assert not [c for c in plugin.calls if "eval" in c]
    assert plugin.calls[0] == "before_training" and plugin.calls.count("after_training_exp") == 13
    # the same sequence of callbacks around every mini-experience, boundary or not
    cycle = len(plugin.calls) // 13
    assert len(plugin.calls) == 13 * cycle and plugin.calls == plugin.calls[:cycle] * 13
    ids, sizes, attributes, tasks, counters = zip(*plugin.experiences)
    assert list(ids) == list(range(13)) and list(counters) == list(range(13))
    assert list(sizes) == [10] * 12 + [5]  # equal sizes: no short chunk at a boundary
    assert len(set(attributes)) == 1  # the same attributes: no origin, no is_last_subexp
    assert set(tasks) == {frozenset({0})}  # no task label


def test_epinet_task_free_runs_on_its_clock(synthetic_root, forbid):
    from epinet.model import EpiNetModel

    forbid(EpiNetModel, "end_experience", "no experience end may reach EpiNet in a task-free stream")
    forbid(EpiNetModel, "reencode_memory", "no per-experience re-encoding in a task-free stream")
    built = []
    real = get_strategy("epinet").build

    def build(setup, options):
        built.append(real(setup, options))
        return built[-1]

    import dataclasses

    import baselines.registry

    spec = get_strategy("epinet")
    patched = dataclasses.replace(spec, build=build)
    baselines.registry._REGISTRY["epinet"] = patched
    try:
        _run(synthetic_root, benchmark="split-mnist-blurry", strategy="epinet", memory=20)
    finally:
        baselines.registry._REGISTRY["epinet"] = spec
    model = built[0].model
    # origins are clock buckets of ceil(20 / 10) = 2 iterations: 10 iterations, buckets 0..4
    assert model.config.origin_every == 2 and model.iterations == 10
    assert int(model.experience) == 0
    stored = model.memory.e[: len(model.memory)]
    assert set(stored.tolist()) <= set(range(5)) and len(set(stored.tolist())) > 1


def test_readme_states_each_refusal_as_the_registry_does():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for strategy in known_strategies():
        spec = get_strategy(strategy)
        reason = spec.boundary_need(spec.validate_options({}, 500))
        if reason is not None:
            assert f"| `{strategy}` | " in readme and reason in readme, strategy
