"""Avalanche adapter for EpiNet: the only module that imports Avalanche.

The plugin calls :class:`EpiNetModel`'s training step (see ``EpiNetModel.observe``) from
Avalanche's callbacks; the method itself lives in the model.

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

import torch
from avalanche.core import BasePlugin, SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.utils.hooks import RemovableHandle

from epinet.model import EpiNetModel


class EpiNetPlugin(SupervisedPlugin):
    """EpiNetModel's step (``EpiNetModel.observe``) in Avalanche's loop: Avalanche runs the
    forward pass, backward and the optimizer step; the plugin appends the replayed memories to
    the minibatch for that one forward pass (``replay_slots``, ``with_replayed``; Avalanche's own
    replay likewise concatenates its buffer into the minibatch) and splits its output after it,
    sets the loss before backward (``training_loss``), stores the batch after the step
    (``store``, then the clock's triggers, ``on_clock``) and ends experiences. With
    ``boundaries=False`` (a stream whose experiences are mini-experiences, not tasks) it never
    ends one: only the clock triggers anything.

    The batch's latent, which ``store`` admits to memory, comes from Avalanche's own
    forward: a hook on the encoder records it during that one call, installed in
    ``before_forward`` and removed in ``after_forward``.
    """

    def __init__(self, boundaries: bool = True) -> None:
        super().__init__()
        self.boundaries = boundaries
        self._latent: Tensor | None = None
        self._hook: RemovableHandle | None = None
        self._batch: list[Tensor] | None = None  # the minibatch as the loader gave it
        self._replay: tuple[Tensor | None, Tensor | None, Tensor | None] = (None, None, None)

    def _record_latent(self, module: nn.Module, inputs: Any, output: Tensor) -> None:
        self._latent = output.detach()

    def _remove_hook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def before_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        model: EpiNetModel = strategy.model
        x, y, t = strategy.mb_x, strategy.mb_y, strategy.mb_task_id
        self._batch = list(strategy.mbatch)
        self._replay = (model.replay_slots(len(y)), None, None)
        slots = self._replay[0]
        if slots is not None:  # x (and its task labels, which mask the logits) extended by the memories
            x, t = model.with_replayed(x, t, slots)
            strategy.mbatch = [x, torch.cat([y, model.memory.y[slots]]), *self._batch[2:-1], t]
        self._remove_hook()  # one left by a forward that raised
        self._hook = model.encoder.register_forward_hook(self._record_latent)

    def after_forward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self._remove_hook()
        b = len(self._batch[1])
        slots = self._replay[0]
        if slots is not None:  # the batch's rows back to Avalanche; the memories' kept for the loss
            raw = getattr(strategy, "mb_raw_output", strategy.mb_output)[b:]
            mask_logits = getattr(strategy, "mask_logits", None)  # idempotent: masking twice is harmless
            self._replay = (slots, raw, raw if mask_logits is None else mask_logits(raw, strategy.mb_task_id[b:]))
            strategy.mb_output = strategy.mb_output[:b]
            if hasattr(strategy, "mb_raw_output"):
                strategy.mb_raw_output = strategy.mb_raw_output[:b]
            self._latent = self._latent[:b]
        strategy.mbatch = self._batch

    def before_backward(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        model: EpiNetModel = strategy.model
        strategy.loss = model.training_loss(strategy.mb_output, strategy.mb_y, *self._replay)
        self._replay = (None, None, None)

    def after_update(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        strategy.model.after_update()

    def after_training_iteration(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        model: EpiNetModel = strategy.model
        mask_logits = getattr(strategy, "mask_logits", None)
        # The unmasked logits where the template keeps them (the harness's does): stored
        # responses must not hold the -inf of a task mask.
        logits = getattr(strategy, "mb_raw_output", strategy.mb_output)
        model.store(strategy.mb_x, self._latent, logits, strategy.mb_y, strategy.mb_task_id, mask_logits)
        self._latent = None
        model.on_clock(strategy.optimizer, strategy.train_mb_size, mask_logits)

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if not self.boundaries:
            return
        mask_logits = getattr(strategy, "mask_logits", None)
        strategy.model.end_experience(strategy.optimizer, strategy.train_mb_size, mask_logits)


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
    boundaries: bool = True,
    **kwargs: Any,
) -> Any:
    """Build ``template`` (default ``SupervisedTemplate``) with an EpiNetPlugin first.

    ``evaluator`` is passed through unchanged: None means no Avalanche
    logging. ``boundaries=False``: the experiences are no task boundaries (see EpiNetPlugin).
    Extra ``kwargs`` go to the template.
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
        plugins=[EpiNetPlugin(boundaries), *plugins],
        evaluator=evaluator,
        **kwargs,
    )
