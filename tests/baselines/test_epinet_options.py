"""EpiNet's strategy options: EpiNetConfig's fields less capacity, strict, importable and
checkable without torch; and the memory's size known before it is built."""

from __future__ import annotations

import subprocess
import sys

import pydantic
import pytest

from baselines.epinet import EpiNetOptions, config_for, planned_bytes
from baselines.registry import get_strategy
from epinet.config import EpiNetConfig


def test_options_are_the_config_fields_but_capacity_with_the_same_defaults():
    assert set(EpiNetOptions.model_fields) == set(EpiNetConfig.model_fields) - {"capacity"}
    assert config_for(EpiNetOptions(), 500) == EpiNetConfig()


def test_options_keep_the_config_bounds():
    with pytest.raises(pydantic.ValidationError, match="greater than 0"):
        EpiNetOptions(top_k=0)
    with pytest.raises(pydantic.ValidationError, match="'loss', 'random' or 'uniform'"):
        EpiNetOptions(salience="loud")


def test_unknown_option_is_rejected_with_the_known_names():
    with pytest.raises(
        ValueError,
        match=r"unknown option 'topk' for strategy 'epinet'; known: alpha, asymmetric, balance_origin, beta, ",
    ):
        get_strategy("epinet").validate_options({"topk": 3}, memory=10)
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        EpiNetOptions.model_validate({"topk": 3})  # the model alone is strict too


def test_capacity_is_the_memory_budget_not_an_option():
    with pytest.raises(ValueError, match="set `memory`"):
        get_strategy("epinet").validate_options({"capacity": 10}, memory=10)
    assert config_for(EpiNetOptions(top_k=3), 7).capacity == 7
    with pytest.raises(pydantic.ValidationError, match="must not exceed capacity"):
        config_for(EpiNetOptions(top_k=9), 7)


def test_validating_options_imports_no_torch():
    code = (
        "import sys, epinet.config, baselines.epinet as e; "
        "e.config_for(e.EpiNetOptions.model_validate({'top_k': 3}), 10); e.planned_bytes(e.EpiNetOptions(), 10); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "options, memory",
    [
        ({}, 500),
        ({"latent_dim": 16, "class_balanced": True}, 40),
        ({"preset": "notebook"}, 30),
        ({"response_weight": 1.0, "recall": False, "vote_weight": 0.0}, 30),
        ({"response_weight": 1.0, "recall": False, "vote_weight": 0.5}, 30),
    ],
)
def test_planned_bytes_equals_the_built_models_memory(options, memory):
    from epinet.model import EpiNetModel

    parsed = EpiNetOptions.model_validate(options)
    model = EpiNetModel(config_for(parsed, memory), "mlp", num_classes=10)
    assert planned_bytes(parsed, memory) == model.memory.nbytes
