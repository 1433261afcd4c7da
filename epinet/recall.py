"""Salience-weighted recall of stored latents."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from epinet.memory import EpisodicMemory

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
    salience, not the score.
    """

    def __init__(self, top_k: int) -> None:
        super().__init__()
        if top_k <= 0:
            raise ValueError(f"top_k must be positive, got {top_k}")
        self.top_k = top_k
        # Reused storage for recall's [B, size] score matrix (not state: never saved or
        # moved). A fresh multi-megabyte tensor per call costs more in page faults than the
        # elementwise work done on it once the memory is large.
        self._workspace: Tensor | None = None

    def extra_repr(self) -> str:
        return f"top_k={self.top_k}"

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
        salience = memory.salience(now, alpha)  # [n]
        scores = self._cosine_times_salience(z_query, memory.c[:n], salience, reuse_workspace=True)  # [B, n]
        top = torch.topk(scores, k=min(self.top_k, n), dim=1).indices  # [B, k]
        top_salience = salience[top]
        weights = top_salience / top_salience.sum(dim=1, keepdim=True).clamp_min(EPS)
        r = torch.einsum("bk,bkd->bd", weights, memory.z[top].to(weights.dtype)).to(z_query.dtype)
        if votes is not None:
            votes.scatter_add_(1, memory.y[top], weights.to(votes.dtype))
        return r, votes

    def scores(self, z_query: Tensor, memory: EpisodicMemory, now: Tensor | float, alpha: float) -> Tensor:
        """RecallScore for every (query, stored memory) pair, shape [B, size] (a fresh tensor)."""
        n = len(memory)
        return self._cosine_times_salience(z_query, memory.c[:n], memory.salience(now, alpha), reuse_workspace=False)

    def _cosine_times_salience(self, z_query: Tensor, keys: Tensor, salience: Tensor, reuse_workspace: bool) -> Tensor:
        """cos(z_query, keys) * salience, shape [B, n]; with ``reuse_workspace``, written into
        this engine's reused storage where autograd allows (valid until the next call)."""
        # Keys are stored unit-norm, so cosine similarity is one matmul.
        query, keys_t = F.normalize(z_query, dim=1), keys.T.to(z_query.dtype)
        out = self._workspace_view(z_query, keys.shape[0]) if reuse_workspace else None
        cosine = query @ keys_t if out is None else torch.mm(query, keys_t, out=out)
        if torch.result_type(cosine, salience) != cosine.dtype:
            return cosine * salience
        return cosine.mul_(salience)  # in place: the same products, one pass less

    def _workspace_view(self, z_query: Tensor, n: int) -> Tensor | None:
        """A [B, n] view of the reused workspace, or None where ``out=`` cannot be used."""
        if torch.is_grad_enabled() and z_query.requires_grad:
            return None  # out= does not support autograd
        need = z_query.shape[0] * n
        ws = self._workspace
        if ws is None or ws.numel() < need or ws.dtype != z_query.dtype or ws.device != z_query.device:
            ws = self._workspace = torch.empty(need, dtype=z_query.dtype, device=z_query.device)
        return ws[:need].view(z_query.shape[0], n)

    def forward(self, z_query: Tensor, memory: EpisodicMemory, now: Tensor | float, alpha: float) -> Tensor:
        return self.recall(z_query, memory, now, alpha)
