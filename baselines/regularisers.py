"""The plugins behind ``si``, ``ewc-online`` and ``lwf`` (the methods are described in those
modules). The strategy modules import this one inside ``build``: registering a strategy and
validating its options must not import torch or Avalanche.

Parameter state (importances, anchors) is kept as one tensor per model parameter, in the
order of ``model.parameters()``, and penalties are computed with autograd, as the DER paper's
code (Mammoth, 2020) does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import LwFPlugin
from avalanche.training.regularization import LearningWithoutForgetting
from torch.func import functional_call, grad, vmap

from baselines.loaders import TensorView

# Per-sample gradients and saved activations of one Fisher chunk take at most this much memory
# (float32); 16 MiB was the fastest of 16, 64 and 256 MiB on one CPU core.
FISHER_CHUNK_BYTES = 16 * 2**20


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _copy(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone() for t in tensors]


def _quadratic_penalty(params, importance, anchor) -> torch.Tensor:
    """``sum_k importance_k * (theta_k - anchor_k)^2`` over every parameter, differentiable in theta."""
    return sum((w * (p - a).pow(2)).sum() for p, w, a in zip(params, importance, anchor))


def _nbytes(tensors) -> int:
    return sum(t.element_size() * t.numel() for t in tensors)


class SIPlugin(SupervisedPlugin):
    """Synaptic Intelligence as in Mammoth's ``models/si.py`` of the DER paper (2020).

    Each step: ``loss += c * sum(Omega * (theta - theta_anchor)^2)``; after backward, every
    gradient is clipped to [-1, 1] (``clip_grad_value_``) and ``small_omega += lr * grad^2``
    (the clipped gradient of the regularised loss). After each experience:
    ``Omega += small_omega / ((theta - theta_anchor)^2 + xi)``, then ``theta_anchor = theta``
    and ``small_omega = 0``. The first anchor is the initialisation.
    """

    def __init__(self, c: float, xi: float, lr: float):
        super().__init__()
        self.c, self.xi, self.lr = c, xi, lr
        self.anchor: list[torch.Tensor] | None = None
        self.big_omega: list[torch.Tensor] | None = None
        self.small_omega: list[torch.Tensor] | None = None

    def before_training_exp(self, strategy, **kwargs):
        params = _params(strategy.model)
        if self.anchor is None:
            self.anchor = _copy(params)
        if self.small_omega is None:
            self.small_omega = [torch.zeros_like(p) for p in params]

    def before_backward(self, strategy, **kwargs):
        if self.big_omega is not None:
            strategy.loss += self.c * _quadratic_penalty(_params(strategy.model), self.big_omega, self.anchor)

    def before_update(self, strategy, **kwargs):
        params = _params(strategy.model)
        torch.nn.utils.clip_grad_value_(params, 1.0)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        torch._foreach_addcmul_(self.small_omega, grads, grads, value=self.lr)

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs):
        params = _params(strategy.model)
        if self.big_omega is None:
            self.big_omega = [torch.zeros_like(p) for p in params]
        for omega, small, p, a in zip(self.big_omega, self.small_omega, params, self.anchor):
            omega += small / ((p - a).pow(2) + self.xi)
            small.zero_()
        self.anchor = _copy(params)

    def state_bytes(self) -> int:
        """Omega, the anchor and the running small omega."""
        return sum(_nbytes(s) for s in (self.big_omega, self.anchor, self.small_omega) if s is not None)


class OnlineEWCPlugin(SupervisedPlugin):
    """Online EWC as in Mammoth's ``models/ewc_on.py`` (the DER paper's code).

    After each experience, on its training samples (one pass, in order):
    ``F_new = sum_i p(y_i|x_i) * (d log p(y_i|x_i) / d theta)^2 / (ceil(N / B) * B)``, with
    ``y_i`` the true label and ``B`` the training batch size (Mammoth divides by its loader's
    number of minibatches times the batch size, which exceeds N by the last minibatch's
    shortfall); then ``F = gamma * F + F_new`` and ``anchor = theta``. Each step:
    ``loss += e_lambda * sum(F * (theta - anchor)^2)`` (no 1/2).

    The pass is vectorised over chunks of samples, in eval mode (``PerSampleFisher``).
    In task-incremental benchmarks p(y|x) is the harness's masked softmax (the task's
    classes), the distribution the model is trained and evaluated with.
    """

    def __init__(self, e_lambda: float, gamma: float, batch_size: int, chunk_bytes: int = FISHER_CHUNK_BYTES):
        super().__init__()
        self.e_lambda, self.gamma, self.batch_size, self.chunk_bytes = e_lambda, gamma, batch_size, chunk_bytes
        self.fisher: list[torch.Tensor] | None = None
        self.anchor: list[torch.Tensor] | None = None

    def before_backward(self, strategy, **kwargs):
        if self.fisher is not None:
            strategy.loss += self.e_lambda * _quadratic_penalty(_params(strategy.model), self.fisher, self.anchor)

    def after_training_exp(self, strategy, **kwargs):
        fisher = self.fisher_information(strategy)
        with torch.no_grad():
            if self.fisher is None:
                self.fisher = fisher
            else:
                for old, new in zip(self.fisher, fisher):
                    old.mul_(self.gamma).add_(new)
        self.anchor = _copy(_params(strategy.model))

    def _data(self, strategy):
        """The experience's training samples, in order: its tensors when the harness has them
        (one gather per chunk), else Avalanche's dataset (the same samples in the same order)."""
        tensors = strategy.experience_tensors() if hasattr(strategy, "experience_tensors") else None
        return strategy.experience.dataset if tensors is None else TensorView(tensors)

    def fisher_information(self, strategy) -> list[torch.Tensor]:
        """``F_new``, one tensor per parameter of ``_params(model)``."""
        model = strategy.model
        fisher = PerSampleFisher(model, getattr(strategy, "class_masks", None))
        data = self._data(strategy)
        loader = torch.utils.data.DataLoader(
            data,
            batch_size=fisher.chunk_size(self.chunk_bytes),
            collate_fn=getattr(data, "collate_fn", None),
            generator=torch.Generator(),  # private: the pass draws nothing from the global random stream
        )
        was_training = model.training
        model.eval()
        try:
            for batch in loader:
                x, y, t = (torch.as_tensor(b).to(strategy.device) for b in (batch[0], batch[1], batch[-1]))
                fisher.add(x, y, t)
        finally:
            model.train(was_training)
        divisor = math.ceil(fisher.n / self.batch_size) * self.batch_size
        return [f / divisor for f in fisher.total]

    def state_bytes(self) -> int:
        """The Fisher estimate and the anchor."""
        return sum(_nbytes(s) for s in (self.fisher, self.anchor) if s is not None)


class PerSampleFisher:
    """Accumulates ``sum_i p(y_i|x_i) * (d log p(y_i|x_i) / d theta)^2`` over chunks of samples.

    Parameters of ``nn.Linear`` layers (each called once per forward, on [batch, features]
    inputs, as in the harness's backbones and heads) take the closed form: sample i's weight
    gradient is the outer product ``g_i a_i^T`` of the gradient at the layer's output and the
    layer's input, so ``sum_i w_i (g_i a_i^T)^2 = (w * g^2)^T (a^2)``, one matrix product per
    chunk from one ordinary backward pass of ``sum_i log p(y_i|x_i)``. Every other parameter
    (convolutions) takes per-sample gradients from ``torch.func`` (``vmap`` of ``grad``), whose
    memory is bounded by the chunk size. Both are exact (tests compare them with Mammoth's
    one-backward-per-sample loop); materialising per-sample gradients of every parameter with
    ``torch.func`` alone took 22-35 s per 60,000-sample experience on one CPU core for the
    2 x 100 MLP (chunks of 16-256 MiB), the closed form 1.1 s (3.9 s for 2 x 400).
    """

    def __init__(self, model: torch.nn.Module, class_masks: torch.Tensor | None):
        self.model, self.class_masks = model, class_masks
        self.names = [name for name, p in model.named_parameters() if p.requires_grad]
        params = dict(model.named_parameters())
        self.linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        in_linear = {id(p) for m in self.linears for p in m.parameters()}
        self.other = [name for name in self.names if id(params[name]) not in in_linear]
        self.sums = {name: torch.zeros_like(params[name]) for name in self.names}
        self.n = 0

    @property
    def total(self) -> list[torch.Tensor]:
        return [self.sums[name] for name in self.names]

    def chunk_size(self, budget_bytes: int) -> int:
        """Samples per chunk so that one chunk's per-sample gradients and saved activations take
        at most ``budget_bytes`` (float32)."""
        params = dict(self.model.named_parameters())
        per_sample = sum(params[name].numel() for name in self.other)
        per_sample += sum(m.in_features + m.out_features for m in self.linears)
        return max(1, budget_bytes // (4 * max(per_sample, 1)))

    def _log_prob(self, logits, y, allowed):
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float("-inf"))
        return -F.cross_entropy(logits, y, reduction="none")

    def add(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> None:
        allowed = None if self.class_masks is None else self.class_masks[t]
        weight = self._linear_part(x, y, allowed)
        if self.other:
            self._func_part(x, y, allowed, weight)
        self.n += len(y)

    def _linear_part(self, x, y, allowed) -> torch.Tensor:
        """Closed form for the Linear layers; returns the weights p(y_i|x_i)."""
        seen: list[tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]] = []

        def keep(module, inputs, output):
            seen.append((module, inputs[0], output))
            return output.clone()  # what follows gets a copy: an in-place op after the layer leaves `output` intact

        hooks = [m.register_forward_hook(keep) for m in self.linears]
        try:
            with torch.enable_grad():
                log_p = self._log_prob(self.model(x), y, allowed)
                if not self.linears:
                    return log_p.detach().exp()
                if len(seen) != len(self.linears) or any(a.dim() != 2 for _, a, _ in seen):
                    raise RuntimeError("the closed-form Fisher needs each Linear layer called once on 2-D inputs")
                outputs = [out for _, _, out in seen]
                grads = torch.autograd.grad(log_p.sum(), outputs, allow_unused=True)
        finally:
            for hook in hooks:
                hook.remove()
        weight = log_p.detach().exp()
        with torch.no_grad():
            for (module, a, _), g in zip(seen, grads):
                if g is None:  # the layer does not reach the loss
                    continue
                wg2 = g.pow(2) * weight[:, None]
                self._add(module.weight, wg2.T @ a.pow(2))
                if module.bias is not None:
                    self._add(module.bias, wg2.sum(0))
        return weight

    def _add(self, param: torch.Tensor, value: torch.Tensor) -> None:
        for name, p in self.model.named_parameters():
            if p is param and name in self.sums:
                self.sums[name] += value
                return

    def _func_part(self, x, y, allowed, weight) -> None:
        """Per-sample gradients from torch.func for the parameters outside Linear layers."""
        params = {name: p.detach() for name, p in self.model.named_parameters()}
        fixed = {name: p for name, p in params.items() if name not in self.other}
        buffers = dict(self.model.named_buffers())

        def log_prob(free, x, y, allowed):
            logits = functional_call(self.model, ({**fixed, **free}, buffers), (x.unsqueeze(0),))
            return self._log_prob(logits, y.unsqueeze(0), None if allowed is None else allowed.unsqueeze(0))[0]

        in_dims = (None, 0, 0, None if allowed is None else 0)
        grads = vmap(grad(log_prob), in_dims=in_dims)({name: params[name] for name in self.other}, x, y, allowed)
        for name in self.other:
            self.sums[name] += torch.einsum("b,b...->...", weight, grads[name].pow(2))


class _HarnessLwF(LearningWithoutForgetting):
    """Avalanche's LwF loss; with the harness's class masks (task-incremental), each earlier
    task's classes are distilled as their own head, the way Avalanche treats the heads of a
    multi-head model (one softmax per task, losses summed)."""

    def __init__(self, alpha: float, temperature: float, per_task: bool):
        super().__init__(alpha=alpha, temperature=temperature)
        self.per_task = per_task

    def _lwf_penalty(self, out, x, curr_model):
        if self.prev_model is None or not self.per_task:
            return super()._lwf_penalty(out, x, curr_model)
        with torch.no_grad():
            prev_out = self.prev_model(x)
        return sum(
            self._distillation_loss(out, prev_out, self.prev_classes_by_task[task])
            for task in sorted(self.prev_classes_by_task)
        )

    def post_adapt(self, agent, exp):
        super().post_adapt(agent, exp)
        self.prev_model.eval()  # the teacher: no dropout or batch statistics
        self.prev_model.requires_grad_(False)


class HarnessLwFPlugin(LwFPlugin):
    """Avalanche's ``LwFPlugin`` on the harness: the distillation reads the model's unmasked
    outputs (``mb_raw_output``; in class- and domain-incremental runs they equal
    ``mb_output``), and task-incremental runs distill per task (``_HarnessLwF``)."""

    def __init__(self, alpha: float, temperature: float, class_masks: torch.Tensor | None = None):
        super().__init__(alpha=alpha, temperature=temperature)
        self.lwf = _HarnessLwF(alpha, temperature, per_task=class_masks is not None)

    def before_backward(self, strategy, **kwargs):
        out = getattr(strategy, "mb_raw_output", strategy.mb_output)
        strategy.loss += self.lwf(strategy.mb_x, out, strategy.model)

    def state_bytes(self) -> int:
        """The previous model kept as the teacher (parameters and buffers)."""
        teacher = self.lwf.prev_model
        if teacher is None:
            return 0
        return _nbytes(teacher.parameters()) + _nbytes(teacher.buffers())
