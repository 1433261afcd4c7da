"""Elastic Weight Consolidation (Kirkpatrick et al., 2017) through Avalanche's EWCPlugin.

``ewc_lambda`` is chosen on the validation split (see benchmarks/configs/tune.yaml and the
README); the chosen values live in the sweep configs, per benchmark.
"""

from typing import Literal

from avalanche.training.plugins import EWCPlugin
from pydantic import BaseModel, ConfigDict, PositiveFloat

from baselines.loaders import TensorView
from baselines.registry import register_strategy


class TensorEWCPlugin(EWCPlugin):
    """EWCPlugin whose Fisher pass reads the experience's tensors batch-wise (same batches,
    same order as the stock per-sample loader, so the importances are identical)."""

    _view = None

    def after_training_exp(self, strategy, **kwargs):
        tensors = strategy.experience_tensors() if hasattr(strategy, "experience_tensors") else None
        self._view = None if tensors is None else TensorView(tensors)
        super().after_training_exp(strategy, **kwargs)

    def compute_importances(self, model, criterion, optimizer, dataset, device, batch_size, num_workers=0):
        data = dataset if self._view is None else self._view
        return super().compute_importances(model, criterion, optimizer, data, device, batch_size, num_workers)


class EWCOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ewc_lambda: PositiveFloat = 100.0
    mode: Literal["separate", "online"] = "separate"
    decay_factor: float | None = None


def penalty_bytes(strategy) -> int:
    """Bytes of the stored parameter copies and Fisher importances."""
    plugin = next(p for p in strategy.plugins if isinstance(p, EWCPlugin))
    total = 0
    for per_exp in (plugin.saved_params, plugin.importances):
        for params in per_exp.values():
            total += sum(p.data.element_size() * p.data.numel() for p in params.values())
    return total


@register_strategy("ewc", options=EWCOptions, memory_bytes=penalty_bytes)
def build(setup, options: EWCOptions):
    decay = options.decay_factor if options.mode == "online" else None
    if options.mode == "online" and decay is None:
        decay = 1.0
    plugin = TensorEWCPlugin(ewc_lambda=options.ewc_lambda, mode=options.mode, decay_factor=decay)
    return setup.strategy(setup.classifier(), plugins=[plugin])
