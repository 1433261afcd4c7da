"""Gradient projection against an episodic memory: GEM and A-GEM on tensors.

* ``ExperienceMemory``: after each experience, ``per_experience`` of its training samples drawn
  uniformly without replacement (Mammoth's ``gem``/``agem`` ``end_task``: the first batch of a
  shuffled loader of that size), kept per experience.
* ``GEMPlugin``: each step, the loss gradient on each earlier experience's memory (all of it);
  if the step's gradient has a negative dot product with any of them, it is replaced by the
  solution of GEM's dual QP (Lopez-Paz & Ranzato 2017, eqs. 10-11).
* ``AGEMPlugin``: each step, the loss gradient on a uniform sample of the whole memory is the
  reference; a step gradient pointing against it loses its component along it (Chaudhry et
  al. 2019, eq. 11).

Both act in ``after_backward``: the step's gradient is in ``p.grad`` and the parameters are
those it was computed at. Memory losses see the harness's task-incremental logit mask, as the
step's own loss does.
"""

from __future__ import annotations

import numpy as np
import quadprog
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch.func import functional_call, grad, vmap


class ExperienceMemory:
    """``per_experience`` random training samples of each finished experience, as ``(x, y, t)``."""

    def __init__(self, per_experience: int):
        self.per_experience = per_experience
        self.groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._flat: tuple[torch.Tensor, ...] = ()
        self._padded: tuple[torch.Tensor, ...] = ()

    def __len__(self) -> int:
        return sum(len(y) for _, y, _ in self.groups)

    def add(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> None:
        keep = torch.randperm(len(y))[: self.per_experience]
        self.groups.append((x[keep], y[keep], t[keep]))  # indexing copies
        self._flat = tuple(torch.cat(parts) for parts in zip(*self.groups))
        # Experiences stacked for one vmapped pass; a shorter one is padded with copies of its
        # first sample at weight 0 (a finite loss that adds nothing).
        size = max(len(y) for _, y, _ in self.groups)

        def padded(part: torch.Tensor) -> torch.Tensor:
            return torch.cat([part, part[:1].expand(size - len(part), *part.shape[1:])])

        stacked = [torch.stack([padded(part) for part in parts]) for parts in zip(*self.groups)]
        weights = torch.stack([(torch.arange(size, device=y.device) < len(y)).float() for _, y, _ in self.groups])
        self._padded = (*stacked, weights)

    def sample(self, n: int) -> tuple[torch.Tensor, ...]:
        """``min(n, len(self))`` distinct samples of the whole memory, drawn uniformly."""
        idx = torch.randperm(len(self))[:n]
        return tuple(part[idx] for part in self._flat)

    def nbytes(self) -> int:
        return sum(part.element_size() * part.numel() for part in self._flat)

    def group_gradients(self, strategy, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[experiences, parameters]``: row e is the gradient of the mean loss on experience e's memory."""
        model, buffers = strategy.model, dict(strategy.model.named_buffers())

        def loss(p, x, y, t, w):
            logits = strategy.mask_logits(functional_call(model, (p, buffers), (x,)), t)
            return (F.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()

        device = next(iter(params.values())).device
        x, y, t, w = (part.to(device) for part in self._padded)
        grads = vmap(grad(loss), in_dims=(None, 0, 0, 0, 0))(params, x, y, t, w)
        return torch.cat([grads[name].flatten(1) for name in params], dim=1)


def trained_parameters(model) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def flatten(grads, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """One vector of ``grads`` (one per parameter, None for zeros), in the order of ``params``."""
    parts = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params.values())]
    return torch.cat([part.flatten() for part in parts])


def flat_grad(params: dict[str, torch.Tensor]) -> torch.Tensor:
    return flatten([p.grad for p in params.values()], params)


def set_flat_grad(params: dict[str, torch.Tensor], vector: torch.Tensor) -> None:
    start = 0
    for p in params.values():
        chunk = vector[start : start + p.numel()].view_as(p)
        if p.grad is None:
            p.grad = chunk.clone()
        else:
            p.grad.copy_(chunk)
        start += p.numel()


def gem_project(g: torch.Tensor, G: torch.Tensor, margin: float, eps: float = 1e-3) -> torch.Tensor:
    """The gradient closest to ``g`` whose dot product with every row of ``G`` is non-negative,
    through GEM's dual: min_v 1/2 v'GG'v + g'G'v subject to v >= margin, then g~ = G'v + g.
    ``eps`` on the diagonal and the margin as a lower bound on v are the authors' code's (and
    Mammoth's, Avalanche's). GG' and Gg are summed in float32 (the 1e-3 ridge dwarfs the
    rounding), the small QP is solved in float64 by quadprog."""
    n = len(G)
    gram = (G @ G.T).double()
    gram = 0.5 * (gram + gram.T) + eps * torch.eye(n, dtype=torch.float64, device=gram.device)
    v = quadprog.solve_qp(gram.cpu().numpy(), -(G @ g).double().cpu().numpy(), np.eye(n), np.full(n, margin))[0]
    return g + torch.from_numpy(v).to(G) @ G


def agem_project(g: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """A-GEM: g - (g.ref / ref.ref) ref if g.ref < 0, else g."""
    dot = torch.dot(g, ref)
    return g - (dot / torch.dot(ref, ref)) * ref if dot < 0 else g


class GEMPlugin(SupervisedPlugin):
    def __init__(self, per_experience: int, margin: float):
        super().__init__()
        self.memory = ExperienceMemory(per_experience)
        self.margin = margin
        self.projected = 0  # steps whose gradient was projected

    def after_backward(self, strategy, **kwargs):
        if not self.memory.groups:
            return
        params = trained_parameters(strategy.model)
        constraints = self.memory.group_gradients(strategy, {n: p.detach() for n, p in params.items()})
        g = flat_grad(params)
        if (constraints @ g < 0).any():
            set_flat_grad(params, gem_project(g, constraints, self.margin))
            self.projected += 1

    def after_training_exp(self, strategy, **kwargs):
        self.memory.add(*(part.to(strategy.device) for part in strategy.experience.tensors))


class AGEMPlugin(SupervisedPlugin):
    def __init__(self, per_experience: int, sample_size: int):
        super().__init__()
        self.memory = ExperienceMemory(per_experience)
        self.sample_size = sample_size
        self.projected = 0

    def after_backward(self, strategy, **kwargs):
        if not self.memory.groups:
            return
        params = trained_parameters(strategy.model)
        x, y, t = self.memory.sample(self.sample_size)
        loss = F.cross_entropy(strategy.mask_logits(strategy.model(x), t), y)
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        ref = flatten(grads, params)
        g = flat_grad(params)
        projected = agem_project(g, ref)
        if projected is not g:
            set_flat_grad(params, projected)
            self.projected += 1

    def after_training_exp(self, strategy, **kwargs):
        self.memory.add(*(part.to(strategy.device) for part in strategy.experience.tensors))


def memory_plugin(strategy) -> GEMPlugin | AGEMPlugin:
    return next(p for p in strategy.plugins if isinstance(p, GEMPlugin | AGEMPlugin))
