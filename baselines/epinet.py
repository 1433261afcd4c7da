"""EpiNet through the harness: the method lives in ``epinet/``; this file only wires it in.

EpiNet's memory capacity is the run's ``memory`` budget (the same number of items as the
replay buffer); every other field of ``epinet.config.EpiNetConfig`` is a strategy option.
Importing this module does not import torch: options are validated (and a memory's size
planned) in well under a second; the model is built, with torch, only in ``build``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, create_model, model_validator

from baselines.registry import register_strategy
from epinet.config import EpiNetConfig, apply_preset
from epinet.memory_layout import planned_nbytes

CAPACITY_IS_MEMORY = "EpiNet's capacity is the run's memory budget: set `memory`, not strategy_options.capacity"


class _FrozenOptions(BaseModel):
    # Unknown keys are rejected by the registry, for every strategy alike.
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A preset fills the options it sets, as in EpiNetConfig itself.
    _preset = model_validator(mode="before")(apply_preset)


# EpiNetConfig's fields (types, defaults, bounds) except capacity, taken from the config itself.
EpiNetOptions = create_model(
    "EpiNetOptions",
    __base__=_FrozenOptions,
    __doc__="EpiNetConfig's fields except ``capacity``, which is the run's memory budget.",
    **{name: (field.annotation, field) for name, field in EpiNetConfig.model_fields.items() if name != "capacity"},
)


def config_for(options: BaseModel, memory: int) -> EpiNetConfig:
    """The EpiNetConfig of a run: its options with ``capacity = memory``."""
    return EpiNetConfig(capacity=memory, **options.model_dump())


# Classes of every benchmark here (MNIST's ten): the width of a stored response.
NUM_CLASSES = 10


def task_free_config(config: EpiNetConfig, batch_size: int) -> EpiNetConfig:
    """The config EpiNet runs with where no experience boundary is given: balancing over origin
    needs an origin, so unless ``origin_every`` is set, time buckets of ``ceil(capacity /
    batch_size)`` iterations (one memory's worth of samples each: a memory spread evenly over
    time; not tuned). Boundary-triggered passes have no trigger there (see EpiNetConfig)."""
    if config.balance_origin and not config.origin_every:
        return config.model_copy(update={"origin_every": -(-config.capacity // batch_size)})
    return config


def planned_bytes(options: BaseModel, memory: int, input_shape: Sequence[int] = (1, 28, 28)) -> int:
    """Bytes EpiNet's episodic memory will hold (float32), known before it is allocated."""
    config = config_for(options, memory)
    responses = NUM_CLASSES if config.response_weight else 0
    return planned_nbytes(memory, input_shape, config.latent_dim, num_classes=responses, keys=config.recalls)


def memory_bytes(strategy) -> int:
    return strategy.model.memory.nbytes


@register_strategy(
    "epinet",
    options=EpiNetOptions,
    memory_bytes=memory_bytes,
    check=config_for,
    planned_bytes=planned_bytes,
    reserved={"capacity": CAPACITY_IS_MEMORY},
)
def build(setup, options: BaseModel):
    # Imported here: they import torch and Avalanche, which option validation does not need.
    from baselines.template import HarnessTemplate
    from epinet.model import EpiNetModel
    from epinet.plugin import epinet_strategy

    config = config_for(options, setup.memory)
    if not setup.boundaries:
        config = task_free_config(config, setup.batch_size)
    model = EpiNetModel(config, setup.backbone, setup.n_classes, setup.input_shape, setup.mlp_width)
    setup.initialise(model)
    return epinet_strategy(
        template=HarnessTemplate, plugins=setup.plugins, boundaries=setup.boundaries, **setup.template_kwargs(model)
    )
