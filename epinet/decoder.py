"""Mixture-of-experts decoder over [z; r]."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MixtureOfExpertsDecoder(nn.Module):
    """Notebook ``Decoder``.

    With h = [z; r] in R^{2d} (or h = z in R^d with ``reads_recall=False``: where recall is
    off r would be 0, and its half of every first layer would add nothing but work):
        g = softmax(G h) in R^E
        logits = sum_e g_e * expert_e(h),   expert_e = Linear(2d, H) - ReLU - Linear(H, K)

    The E experts are evaluated together: their first layers form one
    Linear(2d, E*H) and their second layers one batched [E, H, K] weight.
    Initialisation matches E separate ``nn.Linear`` layers. With E = 1 the
    gate weight is exactly 1 and this is a plain two-layer MLP head, computed as one.
    """

    def __init__(
        self, latent_dim: int, hidden_dim: int, num_classes: int, num_experts: int = 4, reads_recall: bool = True
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.num_classes = num_classes
        self.num_experts = num_experts
        self.reads_recall = reads_recall
        input_dim = 2 * latent_dim if reads_recall else latent_dim
        self.gate = nn.Linear(input_dim, num_experts)
        self.expert_hidden = nn.Linear(input_dim, num_experts * hidden_dim)
        self.expert_out_weight = nn.Parameter(torch.empty(num_experts, hidden_dim, num_classes))
        self.expert_out_bias = nn.Parameter(torch.empty(num_experts, num_classes))
        # nn.Linear's default init (kaiming_uniform with a=sqrt(5)) is
        # U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias alike.
        bound = 1.0 / math.sqrt(hidden_dim)
        nn.init.uniform_(self.expert_out_weight, -bound, bound)
        nn.init.uniform_(self.expert_out_bias, -bound, bound)

    def decoder_input(self, z: Tensor, r: Tensor | None) -> Tensor:
        """h: [z; r], or z alone for a decoder that does not read recall (then r must be None)."""
        if (r is not None) != self.reads_recall:
            raise ValueError(f"this decoder {'reads' if self.reads_recall else 'does not read'} a recall embedding r")
        return torch.cat([z, r], dim=1) if self.reads_recall else z

    def gate_weights(self, z: Tensor, r: Tensor | None) -> Tensor:
        """Gate distribution g over experts, shape [B, E]."""
        return F.softmax(self.gate(self.decoder_input(z, r)), dim=1)

    def expert_logits(self, z: Tensor, r: Tensor | None) -> Tensor:
        """Each expert's logits, shape [B, E, K]."""
        h = self.decoder_input(z, r)
        hidden = F.relu(self.expert_hidden(h)).view(-1, self.num_experts, self.hidden_dim)
        return torch.einsum("beh,ehk->bek", hidden, self.expert_out_weight) + self.expert_out_bias

    def forward(self, z: Tensor, r: Tensor | None = None) -> Tensor:
        """Class logits, shape [B, K]."""
        if self.num_experts == 1:
            # g = softmax of one gate logit = 1 exactly, with zero gradient: skip the gate
            # and the mixing, and compute the one expert as the MLP it is.
            hidden = F.relu(self.expert_hidden(self.decoder_input(z, r)))
            return torch.addmm(self.expert_out_bias[0], hidden, self.expert_out_weight[0])
        return torch.einsum("be,bek->bk", self.gate_weights(z, r), self.expert_logits(z, r))
