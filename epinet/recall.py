"""Salience-weighted recall of stored latents."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from epinet.memory import EpisodicMemory
from epinet.recall_index import cosine_times_salience, make_recall_index

# Salience can be 0 (a memory stored with zero loss, or decayed below float
# range). If all top-k saliences are 0 the weights are 0 / EPS = 0 and the
# recall embedding is the zero vector, the same as "nothing to recall".
EPS = 1e-8


class RecallEngine(nn.Module):
    """Notebook ``RecallEngine``.

    For a query z_t and each stored memory m:
        RecallScore_m = cos(z_t, c_m) * salience_m
    the top-k memories by RecallScore give
        r_t = sum_i w_i z_i,   w_i = salience_i / sum_j salience_j
    where the sums run over the top-k and the weights use the decayed
    salience, not the score. ``index`` picks how the top-k is searched for
    (``epinet.recall_index``): ``"exact"``, or ``"faiss-ivf"`` (approximate on large memories).
    """

    def __init__(self, top_k: int, index: str = "exact") -> None:
        super().__init__()
        if top_k <= 0:
            raise ValueError(f"top_k must be positive, got {top_k}")
        self.top_k = top_k
        # The search for the top-k (exact, or an approximate index); see epinet.recall_index.
        self.index = make_recall_index(index)

    def extra_repr(self) -> str:
        return f"top_k={self.top_k}" + ("" if self.index.name == "exact" else f", index={self.index.name}")

    def recall(self, z_query: Tensor, memory: EpisodicMemory, now: Tensor | float, alpha: float) -> Tensor:
        """Recall embedding r_t for each query, shape [B, d]; zeros if memory is empty."""
        return self.recall_with_votes(z_query, memory, now, alpha, num_classes=0)[0]

    def recall_with_votes(
        self, z_query: Tensor, memory: EpisodicMemory, now: Tensor | float, alpha: float, num_classes: int
    ) -> tuple[Tensor, Tensor | None]:
        """(r_t [B, d], votes [B, num_classes]) from one top-k search.

        votes is EpiNet v2's label-carrying recall: the same weights w_i summed per label,
        ``votes[b, c] = sum_i w_i [y_i = c]``, a distribution over classes (all zeros where
        nothing could be recalled). None when ``num_classes == 0``.
        """
        n = len(memory)
        votes = None if not num_classes else z_query.new_zeros(z_query.shape[0], num_classes)
        if n == 0:
            return torch.zeros_like(z_query), votes
        top, top_salience = self.index.top(z_query, memory, now, alpha, min(self.top_k, n))  # [B, k] each
        weights = top_salience / top_salience.sum(dim=1, keepdim=True).clamp_min(EPS)
        r = torch.einsum("bk,bkd->bd", weights, memory.z[top].to(weights.dtype)).to(z_query.dtype)
        if votes is not None:
            votes.scatter_add_(1, memory.y[top], weights.to(votes.dtype))
        return r, votes

    def scores(self, z_query: Tensor, memory: EpisodicMemory, now: Tensor | float, alpha: float) -> Tensor:
        """RecallScore for every (query, stored memory) pair, shape [B, size] (a fresh tensor)."""
        n = len(memory)
        return cosine_times_salience(z_query, memory.c[:n], memory.salience(now, alpha))

    def forward(self, z_query: Tensor, memory: EpisodicMemory, now: Tensor | float, alpha: float) -> Tensor:
        return self.recall(z_query, memory, now, alpha)
