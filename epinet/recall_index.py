"""The nearest-neighbour search behind recall: which stored memories score highest.

Recall ranks memory m by ``cos(z, c_m) * salience_m``. Two backends answer "the top k":

* ``exact``: one matmul of the queries against every key, times salience, then top-k.
  Linear in the memory size (90-140 ms for 128 queries over 100,000 memories on one core
  here); the default.
* ``faiss-ivf``: an inverted-file index of faiss (IVF-Flat, inner product), probed for a few
  candidates that are then re-scored exactly. Memories below ``EXACT_BELOW`` are still
  searched exactly.

Why the index is over salience-weighted keys and not the keys alone: a cosine index returns
cosine neighbours, and cos x salience picks others (a slightly less similar memory of twice
the salience wins), so re-ranking cosine candidates misses most of the true top-k (measured
on random and on clustered latents: recall@5 of 0.02 to 0.64 even with 20x oversampling).
Decay does not force a rebuild as time passes: ``salience_m(now) = salience_m(t_ref) *
exp(-alpha (now - t_ref))`` for every m, a factor common to all memories, so ranking by
``cos * salience_m(t_ref)`` for any fixed ``t_ref`` gives today's order. That is a
maximum-inner-product search over ``v_m = salience_m(t_ref) c_m``, turned into a cosine search
over unit vectors by one extra coordinate, ``[v_m / M, sqrt(1 - |v_m / M|^2)]`` with M the
largest weight (queries get a 0 there), which IVF handles as it handles any cosine search.

The index pays off where latents have neighbourhoods, as encoded inputs do (recall@5 0.99-1.0
on encoded MNIST). On isotropic random latents no list is much nearer a query than another,
and recall@5 stays near 0.3 short of probing most lists: there, use ``exact``.
"""

from __future__ import annotations

import importlib.util
import math
import time
import weakref

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from epinet.memory import EpisodicMemory
from epinet.salience import decayed_salience

# epinet.config lists the same names (it must not import torch); a test checks they agree.
RECALL_INDEXES = ("exact", "faiss-ivf")
FAISS_INSTALL = "pip install epinet-bench[faiss]"

# Below this many memories faiss-ivf searches exactly: exact then takes ~10 ms or less for
# 128 queries, and the index gains little (measured on EpiNet latents of MNIST with the
# settings below: recall@5 0.97-0.99 at 10,000 memories, 0.96-0.98 at 30,000).
EXACT_BELOW = 10_000
# 2 sqrt(n) lists (faiss advises 4-16), 1/32 of them probed. Measured at 100,000 memories on
# EpiNet latents of MNIST (r0 ~ U(0, 1) / r0 = 1, decayed), one thread, exact search timed
# alongside: recall@5 0.983 / 0.980 at 1/10 / 1/7 of exact's time. Probing 1/24 gave 0.994 /
# 0.991 at 1/10 / 1/5.6, 1/16 0.998 / 0.998 at 1/7.5 / 1/3.7; 3 or 4 sqrt(n) lists gave the
# same recall for the same time, with builds two or three times as long (2-6 s).
LISTS_PER_SQRT_N = 2
PROBED_FRACTION = 1 / 32
# ...and never fewer than 16: a small memory has few lists (200 at 10,000 memories), and
# probing 9 of them measured recall@5 0.90 there, 16 of them 0.97.
MIN_PROBED = 16
# Candidates asked of the index per wanted memory: the index ranks by float32 products of
# weights frozen at t_ref, so the exact re-scoring may swap the last few; 2x covers that.
OVERSAMPLE = 2
# Centroid training: k-means iterations, and sampled points per list (cost ~ lists^2 x points).
TRAIN_ITERATIONS, TRAIN_POINTS_PER_LIST = 10, 32
# Rebuild (retrain the centroids) once this fraction of the memory has been rewritten since
# the last build: they were fitted to keys that are mostly gone.
REBUILD_AFTER_CHANGED = 0.5
# The exactly scanned head (see FaissIVFIndex): the memories weighing more than HEAD_GROWTH
# times the weight of the heaviest HEAD_FRACTION (so at most that share, and none at all where
# salience is bounded, as r0 ~ U(0, 1) or r0 = 1 are), and those written later above that cut.
# Memories stored after t_ref weigh more as they are newer (their weight is their salience at
# t_ref): with r0 = 1 newcomers cross the cut once alpha * (now - t_ref) passes ln 2, the head
# fills, and the build it then calls for moves t_ref forward.
HEAD_FRACTION = 1 / 64
HEAD_GROWTH = 2.0


def require_faiss():
    """The faiss module; a one-line ValueError naming the extra to install if it is missing."""
    # find_spec first: a missing package is reported without a traceback through faiss's loader.
    if importlib.util.find_spec("faiss") is None:
        raise ValueError(
            f"recall_index 'faiss-ivf' needs the faiss-cpu package, which is not installed: {FAISS_INSTALL}"
        )
    import faiss

    return faiss


def make_recall_index(name: str) -> ExactIndex | FaissIVFIndex:
    if name == "exact":
        return ExactIndex()
    if name == "faiss-ivf":
        return FaissIVFIndex()
    raise ValueError(f"unknown recall_index {name!r}: choose one of {', '.join(RECALL_INDEXES)}")


def cosine_times_salience(z_query: Tensor, keys: Tensor, salience: Tensor, out: Tensor | None = None) -> Tensor:
    """cos(z_query, keys) * salience, shape [B, n]; written into ``out`` if given."""
    # Keys are stored unit-norm, so cosine similarity is one matmul.
    query, keys_t = F.normalize(z_query, dim=1), keys.T.to(z_query.dtype)
    cosine = query @ keys_t if out is None else torch.mm(query, keys_t, out=out)
    if torch.result_type(cosine, salience) != cosine.dtype:
        return cosine * salience
    return cosine.mul_(salience)  # in place: the same products, one pass less


class ExactIndex:
    """Every memory scored: matmul, times salience, top-k."""

    name = "exact"

    def __init__(self) -> None:
        # Reused storage for the [B, size] score matrix (not state: never saved or moved). A
        # fresh multi-megabyte tensor per call costs more in page faults than the elementwise
        # work done on it once the memory is large.
        self._workspace: Tensor | None = None

    def top(
        self, z_query: Tensor, memory: EpisodicMemory, now: Tensor | float, alpha: float, k: int
    ) -> tuple[Tensor, Tensor]:
        """(slots of the k best memories per query [B, k], best first; their decayed salience)."""
        n = len(memory)
        salience = memory.salience(now, alpha)  # [n]
        scores = cosine_times_salience(z_query, memory.c[:n], salience, self._workspace_view(z_query, n))
        top = torch.topk(scores, k=k, dim=1).indices
        return top, salience[top]

    def _workspace_view(self, z_query: Tensor, n: int) -> Tensor | None:
        """A [B, n] view of the reused workspace, or None where ``out=`` cannot be used."""
        if torch.is_grad_enabled() and z_query.requires_grad:
            return None  # out= does not support autograd
        need = z_query.shape[0] * n
        ws = self._workspace
        if ws is None or ws.numel() < need or ws.dtype != z_query.dtype or ws.device != z_query.device:
            ws = self._workspace = torch.empty(need, dtype=z_query.dtype, device=z_query.device)
        return ws[:need].view(z_query.shape[0], n)


class FaissIVFIndex:
    """faiss IVF-Flat over salience-weighted keys, plus an exactly scanned head of the heaviest.

    The head: a few memories of outsized salience win queries they are not near (cos 0.2 x
    salience 50 beats cos 0.9 x salience 1), and an IVF, which routes a query to the lists
    near it, never visits them (measured: recall@5 0.28 after 20 such admissions among 3,000).
    So memories of outsized weight (see ``HEAD_FRACTION``) are kept out of the lists and scored
    exactly, as every memory is by exact search.

    The index follows ``memory.version``: when it moved, the slots written since (an admission
    rewrites a few, ``memory.written_at`` says which) are re-filed; when most were rewritten
    (re-encoding), the head outgrew twice its size, or the memory was cleared, it is rebuilt.
    """

    name = "faiss-ivf"

    def __init__(self) -> None:
        self._faiss = require_faiss()
        self._exact = ExactIndex()  # small memories, and the rare query the probed lists cannot fill
        self._index = None
        self._memory: weakref.ref | None = None  # the memory indexed, at its version _version
        self._version = 0
        self._alpha, self._t_ref = 0.0, 0.0
        self._scale = 1.0  # M: the heaviest weight in the lists at the build
        self._head_cut = math.inf  # weights above it go to the head
        self._in_head = torch.zeros(0, dtype=torch.bool)  # per indexed slot (CPU)
        self._head = torch.zeros(0, dtype=torch.long)  # its slots, on the memory's device
        self._changed = 0  # slots re-filed since the last build
        self._head_limit = 0  # a head past this size calls for a build
        self.build_seconds: float | None = None  # the last full build (perf reports it)

    @property
    def layout(self) -> tuple[int, int, int]:
        """(lists, lists probed per query, memories in the exact head) as built now."""
        return self._index.nlist, self._index.nprobe, len(self._head)

    # A faiss index is a SWIG object that neither pickles nor deep-copies: copies start empty
    # and build anew on their first search.
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def top(
        self, z_query: Tensor, memory: EpisodicMemory, now: Tensor | float, alpha: float, k: int
    ) -> tuple[Tensor, Tensor]:
        """As :meth:`ExactIndex.top`; approximate at ``EXACT_BELOW`` memories and above."""
        n = len(memory)
        if n < EXACT_BELOW:
            return self._exact.top(z_query, memory, now, alpha, k)
        self._faiss.omp_set_num_threads(torch.get_num_threads())  # one knob (--threads) for torch and faiss
        self.sync(memory, alpha)
        query = F.normalize(z_query, dim=1)
        host = query.detach().float().cpu()
        probe = torch.cat([host, host.new_zeros(len(host), 1)], 1)  # [q, 0]: see the module's docstring
        _, found = self._index.search(probe.numpy(), min(self._index.ntotal, OVERSAMPLE * k))
        candidates = torch.from_numpy(found).to(memory.c.device)
        valid = candidates >= 0  # -1: the probed lists held fewer memories than asked for
        slots = candidates.clamp_min(0)
        # Candidates re-scored exactly, with today's salience (the index only chose them); the
        # head scored as exact search scores every memory.
        cosine = torch.einsum("bd,bkd->bk", query, memory.c[slots].to(query.dtype))
        salience = decayed_salience(memory.r0[slots], memory.tau[slots], now, alpha)
        head_salience = decayed_salience(memory.r0[self._head], memory.tau[self._head], now, alpha)
        scores = torch.cat(
            [
                (cosine * salience).masked_fill(~valid, -math.inf),
                cosine_times_salience(z_query, memory.c[self._head], head_salience),
            ],
            dim=1,
        )
        slots = torch.cat([slots, self._head.expand(len(slots), -1)], dim=1)
        salience = torch.cat([salience, head_salience.expand(len(slots), -1)], dim=1)
        best = torch.topk(scores, k=k, dim=1).indices
        top, top_salience = slots.gather(1, best), salience.gather(1, best)
        short = valid.sum(dim=1) + len(self._head) < k
        if short.any():
            top[short], top_salience[short] = self._exact.top(z_query[short], memory, now, alpha, k)
        return top, top_salience

    def sync(self, memory: EpisodicMemory, alpha: float) -> None:
        """Bring the index in step with ``memory`` (no work if nothing was written since)."""
        same = self._memory is not None and self._memory() is memory and self._alpha == alpha
        if same and self._version == memory.version:
            return
        changed = self._changed_slots(memory) if same else None
        if changed is None or not self._update(memory, changed):
            self._build(memory, alpha)
        self._memory, self._version = weakref.ref(memory), memory.version

    def _changed_slots(self, memory: EpisodicMemory) -> Tensor | None:
        """Slots written since the last sync, or None where a full rebuild is due."""
        n = len(memory)
        if n < len(self._in_head):  # cleared
            return None
        changed = (memory.written_at[:n] > self._version).nonzero().squeeze(1)
        if self._changed + len(changed) > REBUILD_AFTER_CHANGED * n:
            return None
        return changed

    def _build(self, memory: EpisodicMemory, alpha: float) -> None:
        start = time.perf_counter()
        n, d = len(memory), memory.latent_dim
        c, r0, tau = (field[:n].detach().cpu() for field in (memory.c, memory.r0, memory.tau))
        self._alpha, self._t_ref = alpha, float(tau.max())
        weights = decayed_salience(r0, tau, self._t_ref, alpha)  # salience as of t_ref
        share = math.ceil(HEAD_FRACTION * n)
        self._head_cut = HEAD_GROWTH * float(torch.topk(weights, share).values[-1])
        self._in_head = weights > self._head_cut  # never all: the heaviest share's lightest stays out
        rest = (~self._in_head).nonzero().squeeze(1)
        self._scale = max(float(weights[rest].max()), 1e-30)
        lists = max(1, min(round(LISTS_PER_SQRT_N * math.sqrt(len(rest))), len(rest) // 39))
        index = self._faiss.index_factory(d + 1, f"IVF{lists},Flat", self._faiss.METRIC_INNER_PRODUCT)
        # Centroids from a sample, in few iterations: they only route the search, and a build
        # is repeated after every re-encoding.
        index.cp.niter, index.cp.max_points_per_centroid = TRAIN_ITERATIONS, TRAIN_POINTS_PER_LIST
        vectors = self._vectors(c[rest], weights[rest])
        index.train(vectors)
        # A hash table from slot to list: re-filing a few slots then costs O(slots), not O(n).
        index.set_direct_map_type(self._faiss.DirectMap.Hashtable)
        index.add_with_ids(vectors, rest.numpy().astype(np.int64))
        index.nprobe = min(lists, max(MIN_PROBED, math.ceil(PROBED_FRACTION * lists)))
        self._index, self._changed, self._head_limit = index, 0, 2 * share
        self._head = self._in_head.nonzero().squeeze(1).to(memory.c.device)
        self.build_seconds = time.perf_counter() - start

    def _update(self, memory: EpisodicMemory, changed: Tensor) -> bool:
        """Re-file ``changed`` slots; False (nothing done) where the head would outgrow its limit."""
        if not len(changed):
            return True
        on_device = changed.to(memory.c.device)
        c, r0, tau = (field[on_device].detach().cpu() for field in (memory.c, memory.r0, memory.tau))
        weights = decayed_salience(r0, tau, self._t_ref, self._alpha)
        to_head = weights > self._head_cut
        in_head = torch.cat([self._in_head, torch.zeros(len(memory) - len(self._in_head), dtype=torch.bool)])
        in_head[changed] = to_head
        if int(in_head.sum()) > self._head_limit:
            return False
        ids = np.ascontiguousarray(changed.numpy(), dtype=np.int64)
        # An IDSelectorArray, which the hash table needs (older faiss wraps arrays otherwise);
        # ids not filed (appended slots, the head) are skipped.
        self._index.remove_ids(self._faiss.IDSelectorArray(len(ids), self._faiss.swig_ptr(ids)))
        filed = ~to_head
        self._index.add_with_ids(self._vectors(c[filed], weights[filed]), changed[filed].numpy().astype(np.int64))
        self._in_head, self._changed = in_head, self._changed + len(changed)
        self._head = in_head.nonzero().squeeze(1).to(memory.c.device)
        return True

    def _vectors(self, c: Tensor, weights: Tensor) -> np.ndarray:
        """``[w c / M, sqrt(1 - (w / M)^2)]``: unit vectors whose inner product with ``[q, 0]``
        orders memories as ``cos * salience`` does."""
        w = (weights.double() / self._scale).float()
        # A memory newer than t_ref can weigh more than M: its last coordinate is then 0, which
        # leaves its score exact and only changes the list it is filed under.
        pad = (1 - w.square()).clamp_min(0).sqrt()
        return torch.cat([c.float() * w[:, None], pad[:, None]], 1).contiguous().numpy()
