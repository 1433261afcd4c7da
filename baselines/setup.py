"""What every strategy is built from: the shared backbone, optimiser and training settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from baselines.template import HarnessTemplate
from epinet.backbones import make_backbone

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


@dataclass
class StrategySetup:
    """Settings shared by all strategies of one comparison (same backbone, optimiser, budget)."""

    backbone: str = "mlp"
    mlp_width: int = 400
    init: str = "torch"  # "xavier": Xavier-uniform weights and zero biases in every linear layer
    n_classes: int = 10
    input_shape: tuple[int, ...] = (1, 28, 28)
    memory: int = 500
    lr: float = 1e-3
    optimizer: str = "adam"
    batch_size: int = 128
    replay_batch_size: int | None = None  # None: batch_size
    eval_batch_size: int = 1000
    epochs: int = 1
    n_experiences: int = 1  # in the training stream (a strategy that splits its memory per experience)
    device: str = "cpu"
    class_masks: torch.Tensor | None = None
    fast_data: bool = True
    # False: the stream gives no experience boundary (online protocol, task-free scenario); the
    # strategy is trained on mini-experiences whose end is no boundary (benchmarks.online)
    boundaries: bool = True
    plugins: list[Any] = field(default_factory=list)  # harness plugins (accuracy, progress)

    def classifier(self) -> nn.Module:
        """The backbone with a linear head: the model of every baseline."""
        features, dim = make_backbone(self.backbone, self.mlp_width)
        return self.initialise(nn.Sequential(features, nn.Linear(dim, self.n_classes)))

    def initialise(self, model: nn.Module) -> nn.Module:
        """``model`` with its linear layers initialised as ``init`` says (in place)."""
        if self.init == "xavier":
            for layer in model.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)
        return model

    @property
    def replay_mb_size(self) -> int:
        """Samples drawn from a replay memory per training step."""
        return self.replay_batch_size or self.batch_size

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.optimizer](model.parameters(), lr=self.lr)

    def template_kwargs(self, model: nn.Module) -> dict[str, Any]:
        return dict(
            model=model,
            optimizer=self.make_optimizer(model),
            criterion=nn.CrossEntropyLoss(),
            train_mb_size=self.batch_size,
            eval_mb_size=self.eval_batch_size,
            train_epochs=self.epochs,
            device=self.device,
            class_masks=self.class_masks,
            fast_data=self.fast_data,
            mini_experiences=not self.boundaries,
        )

    def strategy(self, model: nn.Module, plugins: list[Any] = ()) -> HarnessTemplate:
        """A harness strategy on ``model`` with the strategy's plugins plus the harness's."""
        return HarnessTemplate(**self.template_kwargs(model), plugins=[*plugins, *self.plugins])
