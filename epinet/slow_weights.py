"""A slow copy of EpiNet's weights: their exponential moving average, which answers at evaluation.

In the complementary-learning-systems picture the notebook's episodic memory belongs to, a
fast learner (the network trained on the stream and on recalled episodes) is consolidated into
a slow one that averages it over time; CLS-ER (Arani et al., 2022) evaluates with such a
"stable model". Here the slow weights are buffers, not parameters: no optimizer sees them and
the parameter count is the network's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.optim.swa_utils import get_ema_multi_avg_fn


class SlowWeights(nn.Module):
    """Exponential moving averages of the parameters of ``modules`` (by name), updated by
    :meth:`update` after each optimizer step: ``w_slow <- d_t w_slow + (1 - d_t) w`` with
    ``d_t = min(decay, (1 + t) / (10 + t))`` at the t-th update (t = 0, 1, ...), so that the
    first updates, while the copy still holds the initial weights, move it quickly (TensorFlow's
    ``ExponentialMovingAverage`` warm-up). The modules themselves are not kept (they belong to
    the owner; :meth:`update` and :meth:`call` are given them)."""

    def __init__(self, modules: dict[str, nn.Module], decay: float) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.names = {key: [name for name, _ in module.named_parameters()] for key, module in modules.items()}
        for key, module in modules.items():
            for i, p in enumerate(module.parameters()):
                self.register_buffer(f"{key}_{i}", p.detach().clone())
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def averages(self, key: str) -> list[Tensor]:
        return [getattr(self, f"{key}_{i}") for i in range(len(self.names[key]))]

    def rate(self) -> float:
        """d_t for the next update."""
        t = int(self.updates)
        return min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def update(self, modules: dict[str, nn.Module]) -> None:
        """One averaging step toward the modules' current parameters."""
        average = get_ema_multi_avg_fn(self.rate())
        for key, module in modules.items():
            average(self.averages(key), [p.detach() for p in module.parameters()], None)
        self.updates += 1

    def call(self, key: str, module: nn.Module, *args: Any) -> Any:
        """``module(*args)`` computed with the slow weights kept under ``key``."""
        return functional_call(module, dict(zip(self.names[key], self.averages(key))), args)
