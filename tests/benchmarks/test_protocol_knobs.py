"""The protocol knobs a published table needs (mlp_width, input_scale, valid_fraction 0,
replay_batch_size) and how a sweep merges strategy options from its layers."""

from __future__ import annotations

import pytest
import torch

from benchmarks.config import ConfigError, SweepConfig, make_run_config
from benchmarks.data import MNIST_MEAN, MNIST_STD, unit_scaled
from benchmarks.streams import build_benchmark
from epinet.backbones import make_backbone


def test_variant_options_merge_key_by_key_with_the_experiment_and_sweep_options():
    sweep = SweepConfig.model_validate(
        {
            "name": "s",
            "seeds": [0],
            "strategy_options": {"ewc": {"ewc_lambda": 5.0}},
            "defaults": {"strategy_options": {"mode": "online"}},
            "experiments": [
                {
                    "name": "e",
                    "benchmarks": ["split-mnist"],
                    "strategies": ["ewc"],
                    "overrides": {"strategy_options": {"decay_factor": 0.5, "ewc_lambda": 7.0}},
                    "variants": {"a": {"strategy_options": {"ewc_lambda": 9.0}}, "b": {}},
                }
            ],
        }
    )
    options = {r.variant: r.strategy_options for r in sweep.runs()}
    assert options == {
        "a": {"ewc_lambda": 9.0, "mode": "online", "decay_factor": 0.5},
        "b": {"ewc_lambda": 7.0, "mode": "online", "decay_factor": 0.5},
    }


def test_knobs_at_their_defaults_leave_the_hash_alone():
    base = make_run_config(benchmark="split-mnist", strategy="naive")
    explicit = make_run_config(
        benchmark="split-mnist", strategy="naive", mlp_width=400, input_scale="standard", replay_batch_size=None
    )
    assert base.config_hash() == explicit.config_hash()
    assert make_run_config(benchmark="split-mnist", strategy="naive", mlp_width=100).config_hash() != base.config_hash()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"backbone": "cnn", "mlp_width": 100}, "mlp_width applies to the mlp backbone only (backbone is 'cnn')"),
        ({"valid_fraction": 0.0, "eval_split": "valid"}, "eval_split 'valid' needs a validation split"),
        ({"input_scale": "raw"}, "input_scale: Input should be 'standard' or 'unit'"),
        ({"replay_batch_size": 0}, "replay_batch_size: Input should be greater than 0"),
    ],
)
def test_inconsistent_knobs_are_refused_with_the_key(fields, message):
    with pytest.raises(ConfigError, match="arguments: ") as err:
        make_run_config(benchmark="split-mnist", strategy="naive", **fields)
    assert message in str(err.value)


def test_mlp_width_sets_both_hidden_layers():
    module, dim = make_backbone("mlp", 100)
    widths = [layer.out_features for layer in module if isinstance(layer, torch.nn.Linear)]
    assert (dim, widths) == (100, [100, 100])
    assert make_backbone("mlp")[1] == 400
    with pytest.raises(ValueError, match="mlp_width applies to the mlp backbone only"):
        make_backbone("cnn", 100)


def test_xavier_init_draws_uniform_weights_within_the_bound_and_zero_biases():
    import math

    from baselines.setup import StrategySetup

    torch.manual_seed(0)
    model = StrategySetup(mlp_width=100, init="xavier").classifier()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(100, 784), (100, 100), (10, 100)]
    for layer in linears:
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
        assert torch.count_nonzero(layer.bias) == 0
    default = StrategySetup(mlp_width=100).classifier()  # torch's: biases drawn, first-layer bound 1/sqrt(784)
    assert torch.count_nonzero(default[1].bias) > 0 and default[0][1].weight.abs().max() <= 1 / 28


def test_unit_scale_gives_pixels_over_255(synthetic_mnist):
    unit = unit_scaled(synthetic_mnist)
    raw = synthetic_mnist.train_x * MNIST_STD + MNIST_MEAN
    assert torch.equal(unit.train_x, raw) and unit.train_x.min() >= -1e-6 and unit.train_x.max() <= 1 + 1e-6
    # the pixel values are k / 255 up to float rounding
    assert torch.allclose(unit.test_x * 255, (unit.test_x * 255).round(), atol=1e-3)
    bench = build_benchmark("split-mnist", synthetic_mnist, seed=0, input_scale="unit")
    x = bench.train_stream[0].tensors[0]
    assert x.min() >= -1e-6 and x.max() <= 1 + 1e-6


def test_valid_fraction_zero_trains_on_every_image(synthetic_mnist):
    bench = build_benchmark("permuted-mnist", synthetic_mnist, seed=0, n_experiences=2, valid_fraction=0.0)
    assert [len(e.tensors[1]) for e in bench.train_stream] == [len(synthetic_mnist.train_y)] * 2
    assert [len(e.tensors[1]) for e in bench.scenario.valid_stream] == [0, 0]
