"""Inner products between per-sample gradients of the cross-entropy, without a per-sample loop.

A set of samples is represented by factors ``[(L, R), ...]``, one pair per parameter block,
such that sample i's gradient of the block is the outer product ``L[i] R[i]^T``. Then

    <g_i, h_j> = sum over blocks of (L1[i] . L2[j]) * (R1[i] . R2[j])

* a model whose parameters all sit in ``nn.Linear`` layers (the harness's MLP): per layer,
  L = the gradient of the summed loss w.r.t. the layer's output, R = its input with a 1
  appended for the bias; one forward and one backward give every sample's factors, and the
  products cost n1 x n2 x (layer widths) instead of n1 x n2 x (parameters);
* any other model: ``torch.func.vmap`` over ``grad`` materialises the flat per-sample
  gradients G, as the single block (G, 1).

Both are exact (tests compare them with per-sample autograd).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

Factors = list[tuple[torch.Tensor, torch.Tensor]]


def _masked_logits(logits: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    return logits if masks is None else logits.masked_fill(~masks, float("-inf"))


def _linear_factors(model: nn.Module, x, y, masks, linears: list[nn.Linear]) -> Factors | None:
    inputs, outputs = [], []

    def keep(module, args, out):
        inputs.append(args[0].detach())
        outputs.append(out)

    handles = [m.register_forward_hook(keep) for m in linears]
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    if len(outputs) != len(linears) or any(a.dim() != 2 for a in inputs):
        return None  # a layer used twice or on sequences: not one outer product per sample
    loss = F.cross_entropy(_masked_logits(logits, masks), y, reduction="sum")
    deltas = torch.autograd.grad(loss, outputs)
    return [
        (d.detach(), torch.cat((a, a.new_ones(len(a), 1)), 1) if m.bias is not None else a)
        for m, a, d in zip(linears, inputs, deltas)
    ]


def gradient_factors(model: nn.Module, x, y, masks=None) -> Factors:
    """Factors of the per-sample gradients of ``cross_entropy(model(x)[i], y[i])``, logits
    outside ``masks`` ([n, n_classes] bool, or None) set to -inf."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    in_linears = sum(p.numel() for m in linears for p in m.parameters(recurse=False))
    if in_linears == sum(p.numel() for p in model.parameters()):
        factors = _linear_factors(model, x, y, masks, linears)
        if factors is not None:
            return factors
    params = {k: p.detach() for k, p in model.named_parameters()}

    def loss(p, xi, yi, mi):
        return F.cross_entropy(_masked_logits(functional_call(model, p, (xi[None],)), mi), yi[None])

    g = vmap(grad(loss), in_dims=(None, 0, 0, None if masks is None else 0))(params, x, y, masks)
    flat = torch.cat([g[k].flatten(1) for k in params], dim=1)
    return [(flat, flat.new_ones(len(flat), 1))]


def dots(f1: Factors, f2: Factors) -> torch.Tensor:
    """[n1, n2]: <g_i, h_j> for every sample i of f1 and j of f2."""
    return sum((l1 @ l2.T) * (r1 @ r2.T) for (l1, r1), (l2, r2) in zip(f1, f2))


def sq_norms(f: Factors) -> torch.Tensor:
    """[n]: ||g_i||^2."""
    return sum(ll.pow(2).sum(1) * r.pow(2).sum(1) for ll, r in f)


def mean_gradient(f: Factors) -> list[torch.Tensor]:
    """mean_i g_i, the gradient of the mean loss, one matrix per block."""
    return [ll.T @ r / len(ll) for ll, r in f]


def dots_with(gradient: list[torch.Tensor], f: Factors) -> torch.Tensor:
    """[n]: <gradient, g_j> for every sample j of f."""
    return sum(((ll @ m) * r).sum(1) for m, (ll, r) in zip(gradient, f))
