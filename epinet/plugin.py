"""Avalanche adapter for EpiNet: the only module that imports Avalanche.

The plugin only wires Avalanche's training loop to :class:`EpiNetModel`'s
hooks; the method itself lives in the model.

Expectations on the strategy: ``strategy.model`` is an ``EpiNetModel``;
mini-batches are (x, y, task_labels), as Avalanche's supervised templates
provide (``mb_x``, ``mb_y``, ``mb_task_id``, ``mb_output``, ``loss``). If the
strategy has ``mask_logits(logits, task_labels) -> logits`` it is applied to
replay logits and to the logits that score salience; it must return logits
of the same shape and be idempotent (e.g. fill other tasks' classes with
-inf), since ``mb_output`` may already be masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from avalanche.core import BasePlugin, SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import Tensor
from torch.optim import Optimizer

from epinet.model import EpiNetModel


class EpiNetPlugin(SupervisedPlugin):
    """Replay term before backward; admission and clock tick after each iteration."""

    def __init__(self) -> None:
        super().__init__()
        self._latent: Tensor | None = None

    def after_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        # The replay forward in before_backward overwrites model.last_latent.
        self._latent = strategy.model.last_latent

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        model: EpiNetModel = strategy.model
        batch_size = model.config.replay_batch_size or len(strategy.mb_x)
        replay = model.replay_term(batch_size, mask_logits=getattr(strategy, "mask_logits", None))
        if replay is not None:
            strategy.loss = strategy.loss + replay

    def after_training_iteration(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        model: EpiNetModel = strategy.model
        logits = strategy.mb_output.detach()
        mask_logits = getattr(strategy, "mask_logits", None)
        if mask_logits is not None:
            logits = mask_logits(logits, strategy.mb_task_id)
        per_sample_loss = F.cross_entropy(logits, strategy.mb_y, reduction="none")
        model.memorize(strategy.mb_x, self._latent, per_sample_loss, strategy.mb_y, strategy.mb_task_id)
        self._latent = None
        model.tick()
        every = model.config.reencode_every
        if every and model.iterations % every == 0:
            model.reencode_memory()

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if strategy.model.config.reencode_every_experience:
            strategy.model.reencode_memory()


def epinet_strategy(
    model: EpiNetModel,
    optimizer: Optimizer,
    *,
    train_mb_size: int,
    eval_mb_size: int,
    train_epochs: int,
    device: str = "cpu",
    plugins: Sequence[BasePlugin] = (),
    evaluator: Any = None,
    template: type | None = None,
    **kwargs: Any,
) -> Any:
    """Build ``template`` (default ``SupervisedTemplate``) with an EpiNetPlugin first.

    ``evaluator`` is passed through unchanged: None means no Avalanche
    logging. Extra ``kwargs`` go to the template.
    """
    template = template or SupervisedTemplate
    if not isinstance(model, EpiNetModel):
        raise TypeError(f"epinet_strategy needs an EpiNetModel, got {type(model).__name__}")
    return template(
        model=model,
        optimizer=optimizer,
        train_mb_size=train_mb_size,
        eval_mb_size=eval_mb_size,
        train_epochs=train_epochs,
        device=device,
        plugins=[EpiNetPlugin(), *plugins],
        evaluator=evaluator,
        **kwargs,
    )
