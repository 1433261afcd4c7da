"""EpiNet through the harness: the method lives in ``epinet/``; this file only wires it in.

EpiNet's memory capacity is the run's ``memory`` budget (the same number of items as the
replay buffer); every other EpiNet hyperparameter is a strategy option (see
``epinet.model.EpiNetConfig``).
"""

from pydantic import BaseModel, ConfigDict

from baselines.registry import register_strategy
from baselines.template import HarnessTemplate
from epinet.model import EpiNetConfig, EpiNetModel
from epinet.plugin import epinet_strategy


class EpiNetOptions(BaseModel):
    """EpiNetConfig's fields except ``capacity``; validated against the budget in ``check``."""

    model_config = ConfigDict(extra="allow", frozen=True)


def config_for(options: EpiNetOptions, memory: int) -> EpiNetConfig:
    fields = options.model_dump()
    if "capacity" in fields:
        raise ValueError("EpiNet's capacity is the run's memory budget: set `memory`, not strategy_options.capacity")
    return EpiNetConfig(capacity=memory, **fields)


def memory_bytes(strategy) -> int:
    return strategy.model.memory.nbytes


@register_strategy("epinet", options=EpiNetOptions, memory_bytes=memory_bytes, check=config_for)
def build(setup, options: EpiNetOptions):
    model = EpiNetModel(config_for(options, setup.memory), setup.backbone, setup.n_classes, setup.input_shape)
    return epinet_strategy(template=HarnessTemplate, plugins=setup.plugins, **setup.template_kwargs(model))
