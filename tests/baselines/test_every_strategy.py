"""Every registered strategy, at its default options, trains and evaluates on tiny real-format
data through the runner, in the class- and the task-incremental setting, and reports no more
memory than it planned."""

from __future__ import annotations

import warnings

import pytest

from baselines.registry import get_strategy, known_strategies
from benchmarks.config import RunConfig
from benchmarks.runner import run

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("benchmark", ["split-mnist", "split-mnist-task"])
@pytest.mark.parametrize("strategy", known_strategies())
def test_strategy_trains_on_tiny_data(synthetic_root, strategy, benchmark):
    config = RunConfig(
        benchmark=benchmark,
        strategy=strategy,
        seed=1,
        batch_size=16,
        replay_batch_size=8,
        eval_batch_size=50,
        memory=40,
        data_root=str(synthetic_root),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record = run(config, progress=False)
    matrix = record["accuracy_matrix"]
    spec = get_strategy(strategy)
    assert len(matrix) == (1 if spec.joint else 5) and all(len(row) == 5 for row in matrix)
    # each experience's two classes are easy: the first one is learnt once trained on
    assert matrix[0][0] > 0.6, matrix
    if spec.planned_bytes is not None:
        # planned_bytes counts the stored samples; a strategy may keep a copy of the network
        # besides (iCaRL's previous model) and a few class statistics
        options = spec.validate_options({}, config.memory)
        planned = spec.planned_bytes(options, config.memory, (1, 28, 28))
        network = 4 * record["metrics"]["parameter_count"]
        assert 0 < record["metrics"]["memory_bytes"] <= planned + 1.1 * network
