"""The same RunConfig gives the same accuracy matrix; another seed gives another one."""

import numpy as np
import pytest
import torch

from benchmarks import metrics
from benchmarks.config import RunConfig
from benchmarks.runner import run

SMALL = dict(benchmark="split-mnist", batch_size=16, eval_batch_size=500, memory=40)


def matrix(data, **fields):
    record = run(RunConfig(**{**SMALL, **fields}), data=data, progress=False)
    return record["accuracy_matrix"]


@pytest.mark.parametrize("strategy", ["naive", "replay", "epinet"])
def test_same_config_same_matrix_other_seed_differs(strategy, synthetic_mnist):
    first = matrix(synthetic_mnist, strategy=strategy, seed=0)
    torch.rand(100)  # disturb the global RNG: a run must seed everything itself
    np.random.rand(100)
    second = matrix(synthetic_mnist, strategy=strategy, seed=0)
    other = matrix(synthetic_mnist, strategy=strategy, seed=1)
    assert np.shape(first) == (5, 5)
    assert first == second  # exactly, not approximately
    assert other != first


def test_record_metrics_match_its_matrix(synthetic_mnist):
    record = run(RunConfig(**SMALL, strategy="naive", seed=0, n_experiences=2), data=synthetic_mnist, progress=False)
    R = record["accuracy_matrix"]
    assert np.shape(R) == (2, 2)
    for name, value in metrics.summarise(R).items():
        assert record["metrics"][name] == pytest.approx(value)
    assert (
        record["config"]["strategy"] == "naive"
        and record["config_hash"] == RunConfig(**SMALL, strategy="naive", n_experiences=2).config_hash()
    )
    assert len(record["experience_seconds"]) == 2


def test_fast_tensor_path_trains_like_avalanches_loader(synthetic_mnist, loader_paths):
    """fast_data=True (minibatches gathered from tensors) and False (Avalanche's DataLoader)
    see the same samples in the same order, so naive fine-tuning gives the same matrix."""
    fast = matrix(synthetic_mnist, strategy="naive", seed=0, n_experiences=2, fast_data=True)
    stock = matrix(synthetic_mnist, strategy="naive", seed=0, n_experiences=2, fast_data=False)
    assert loader_paths() == ["fast", "stock"]  # each run took its own path
    np.testing.assert_allclose(fast, stock, atol=1e-6)
