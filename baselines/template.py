"""The strategy template every strategy of the harness runs on.

``HarnessTemplate`` is Avalanche's ``SupervisedTemplate`` with two additions that apply to
every strategy alike, so comparisons stay fair:

* minibatches are gathered from the experience's pre-loaded tensors (``experience.tensors``)
  rather than through per-sample ``__getitem__``; ``fast_data=False`` restores the stock path;
* task-incremental masking: with ``class_masks`` ([n_tasks, n_classes] bool), logits of
  classes outside a sample's task are set to -inf, in training and evaluation.

With ``mini_experiences=True`` (a stream without boundaries: one ``train`` call per minibatch,
``benchmarks.online``) the per-experience set-up is trimmed to what a minibatch needs: the
experience's tensors stand in for its Avalanche dataset (none is built), and a model without
dynamic modules is adapted and its optimiser made once, at the first mini-experience, not at
each (they would not change in between: the same parameters, the same updates).
"""

from __future__ import annotations

import warnings

import torch
from avalanche.models import DynamicModule
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate

from baselines.loaders import TensorBatches, TensorView


class SilentEvaluator(EvaluationPlugin):
    """Avalanche's evaluator with no metrics and no loggers, made cheap.

    The stock plugin answers every ``before_*``/``after_*`` callback (about a dozen per training
    iteration) with a metrics pass that first wraps the experience in a logging view; with
    nothing to compute or log, that is pure overhead. Here callbacks the class does not define
    simply do not exist, and the metrics pass returns at once when there is nothing to update.
    """

    __getattribute__ = object.__getattribute__  # no forwarding of undefined callbacks to metrics

    def _update_metrics_and_loggers(self, strategy, callback: str):
        if self.metrics or self.loggers:
            return super()._update_metrics_and_loggers(strategy, callback)
        return []


def silent_evaluator() -> EvaluationPlugin:
    """An evaluator with no metrics and no loggers: the harness measures accuracy itself."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return SilentEvaluator()


class HarnessTemplate(SupervisedTemplate):
    def __init__(
        self,
        *,
        class_masks: torch.Tensor | None = None,
        fast_data: bool = True,
        mini_experiences: bool = False,
        **kwargs,
    ):
        if kwargs.get("evaluator") is None:
            kwargs["evaluator"] = silent_evaluator()
        super().__init__(**kwargs)
        self.class_masks = None if class_masks is None else class_masks.to(self.device)
        self.fast_data = fast_data
        self.mini_experiences = mini_experiences
        self._static_model = not any(isinstance(m, DynamicModule) for m in self.model.modules())

    def train_dataset_adaptation(self, **kwargs):
        tensors = getattr(self.experience, "tensors", None)
        if self.mini_experiences and self.fast_data and tensors is not None:
            self.adapted_dataset = TensorView(tensors)  # a minibatch's worth: no Avalanche dataset built
            return
        super().train_dataset_adaptation(**kwargs)

    def check_model_and_optimizer(self, reset_optimizer_state=False, **kwargs):
        if self.mini_experiences and self._static_model and self.optimized_param_id is not None:
            return  # adapted and made at the first mini-experience; nothing changes in between
        super().check_model_and_optimizer(reset_optimizer_state=reset_optimizer_state, **kwargs)

    def mask_logits(self, logits: torch.Tensor, task_labels: torch.Tensor) -> torch.Tensor:
        if self.class_masks is None:
            return logits
        return logits.masked_fill(~self.class_masks[task_labels], float("-inf"))

    def forward(self):
        self.mb_raw_output = super().forward()  # unmasked: what a method storing logits keeps (DER)
        return self.mask_logits(self.mb_raw_output, self.mb_task_id)

    def experience_tensors(self):
        """The experience's tensors, if the adapted dataset is still exactly that experience."""
        tensors = getattr(self.experience, "tensors", None)
        if not self.fast_data or tensors is None or len(self.adapted_dataset) != len(tensors[0]):
            return None  # a plugin changed the dataset: fall back to Avalanche's loader
        return tensors

    def make_train_dataloader(self, shuffle=True, **kwargs):
        tensors = self.experience_tensors()
        if tensors is None:
            return super().make_train_dataloader(shuffle=shuffle, **kwargs)
        self.dataloader = TensorBatches(tensors, self.train_mb_size, shuffle=shuffle)

    def make_eval_dataloader(self, **kwargs):
        tensors = self.experience_tensors()
        if tensors is None:
            return super().make_eval_dataloader(**kwargs)
        self.dataloader = TensorBatches(tensors, self.eval_mb_size, shuffle=False)
