"""Elastic Weight Consolidation (Kirkpatrick et al., 2017) through Avalanche's EWCPlugin.

``ewc_lambda`` is chosen on the validation split (see benchmarks/configs/tune.yaml and
results/README.md); the chosen values live in the sweep configs, per benchmark.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveFloat

from baselines.registry import register_strategy


class EWCOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ewc_lambda: PositiveFloat = 100.0
    mode: Literal["separate", "online"] = "separate"
    decay_factor: float | None = None


def penalty_bytes(strategy) -> int:
    from baselines.tensor_plugins import TensorEWCPlugin

    return next(p for p in strategy.plugins if isinstance(p, TensorEWCPlugin)).penalty_bytes()


@register_strategy(
    "ewc",
    options=EWCOptions,
    memory_bytes=penalty_bytes,
    needs_boundaries="computes the Fisher information and anchors the parameters at the end of each experience",
)
def build(setup, options: EWCOptions):
    from baselines.tensor_plugins import TensorEWCPlugin

    decay = options.decay_factor if options.mode == "online" else None
    if options.mode == "online" and decay is None:
        decay = 1.0
    plugin = TensorEWCPlugin(ewc_lambda=options.ewc_lambda, mode=options.mode, decay_factor=decay)
    return setup.strategy(setup.classifier(), plugins=[plugin])
