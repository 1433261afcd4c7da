import copy
import importlib.util
import subprocess
import sys
import typing

import pydantic
import pytest
import torch
import torch.nn.functional as F

import epinet.recall_index as recall_index
from epinet import EpiNetConfig, EpisodicMemory, RecallEngine

needs_faiss = pytest.mark.skipif(
    importlib.util.find_spec("faiss") is None,
    reason="faiss-cpu is not installed (pip install epinet-bench[faiss], or the dev extra)",
)
NOW, ALPHA, K = 100.0, 0.01, 5


def clustered(n, d=32, centres=20, seed=0):
    """Unit vectors around a few centres: latents with neighbourhoods, as encoded classes have
    (on isotropic random vectors an IVF index has nothing to exploit; see recall_index)."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.randn(centres, d, generator=g)
    return F.normalize(centre[torch.randint(centres, (n,), generator=g)] + 0.5 * torch.randn(n, d, generator=g), dim=1)


def filled_memory(n, d=32, capacity=None, seed=0):
    """A memory of ``n`` clustered latents, r0 ~ U(0, 1), stored at times spread over [0, NOW)."""
    g = torch.Generator().manual_seed(seed + 1)
    mem = EpisodicMemory(capacity or n, (1,), d)
    z, r0 = clustered(n, d, seed=seed) * 3, torch.rand(n, generator=g)
    taus = torch.linspace(0, NOW, 10).tolist()
    for chunk, tau in zip(torch.arange(n).chunk(10), taus):
        mem.admit(
            torch.zeros(len(chunk), 1), z[chunk], r0[chunk], torch.zeros(len(chunk), dtype=torch.long), 0, tau, 0.0
        )
    return mem


def recall_at_k(found, exact):
    return sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), exact.tolist())) / exact.numel()


def exact_top(mem, query, k=K):
    return recall_index.ExactIndex().top(query, mem, NOW, ALPHA, k)[0]


@pytest.fixture(autouse=True)
def one_thread():
    # faiss follows torch's thread count. Two OpenMP pools (torch's and faiss's own) on 2 shared
    # cores wait on each other: k-means builds here took 0.45 s each instead of 0.01 s.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def index_every_size(monkeypatch):
    # The index itself, also on the small memories a fast test can afford.
    monkeypatch.setattr(recall_index, "EXACT_BELOW", 0)


def test_exact_backend_is_the_recall_as_it_was():
    """RecallEngine's default search, against the formula it replaced (matmul, times salience, top-k)."""
    mem = filled_memory(300, d=8)
    query = torch.randn(7, 8, generator=torch.Generator().manual_seed(3))
    salience = mem.salience(NOW, ALPHA)
    scores = F.normalize(query, dim=1) @ mem.c[:300].T * salience
    top = torch.topk(scores, K, dim=1).indices
    weights = salience[top] / salience[top].sum(dim=1, keepdim=True)
    expected = torch.einsum("bk,bkd->bd", weights, mem.z[top])
    engine = RecallEngine(K)
    assert engine.index.name == "exact"
    torch.testing.assert_close(engine.recall(query, mem, NOW, ALPHA), expected, rtol=0, atol=0)
    assert torch.equal(engine.index.top(query, mem, NOW, ALPHA, K)[0], top)


@needs_faiss
def test_faiss_recall_at_k_against_exact(index_every_size):
    mem = filled_memory(4000)
    query = clustered(4064)[4000:]  # the same centres, points not stored
    index = recall_index.FaissIVFIndex()
    top, salience = index.top(query, mem, NOW, ALPHA, K)
    assert recall_at_k(top, exact_top(mem, query)) >= 0.95
    # The saliences returned are the exact ones of the slots returned (weights of r follow them).
    torch.testing.assert_close(salience, mem.salience(NOW, ALPHA)[top], rtol=0, atol=0)
    # Where the same k memories were found, r is exact search's r.
    same = (top.sort(dim=1).values == exact_top(mem, query).sort(dim=1).values).all(dim=1)
    r = RecallEngine(K, "faiss-ivf").recall(query, mem, NOW, ALPHA)
    torch.testing.assert_close(r[same], RecallEngine(K).recall(query, mem, NOW, ALPHA)[same])


def admit(mem, z, r0):
    n = len(z)
    mem.admit(torch.zeros(n, 1), z, torch.full((n,), r0), torch.zeros(n, dtype=torch.long), 0, NOW, ALPHA)
    return (mem.r0[: len(mem)] == r0).nonzero().squeeze(1)  # the slots they were stored in


@needs_faiss
def test_faiss_index_follows_admissions_that_overwrite_slots(index_every_size):
    mem = filled_memory(3000)
    index = recall_index.FaissIVFIndex()
    query = clustered(3064)[3000:]
    index.top(query, mem, NOW, ALPHA, K)
    built = index._index
    # Newcomers of ordinary salience replace the least salient memories and are filed in the lists.
    z_new = clustered(3040, seed=0)[3000:]
    replaced = admit(mem, z_new, 0.999)
    assert len(replaced) == 40 and len(mem) == 3000
    top, _ = index.top(z_new, mem, NOW, ALPHA, K)  # each newcomer's own key as query
    assert index._index is built  # re-filed in place, not rebuilt
    assert not index._in_head[replaced].any()
    assert index._index.ntotal + len(index._head) == 3000  # every slot filed once: in a list or the head
    assert recall_at_k(top, exact_top(mem, z_new)) >= 0.95
    assert set(top[:, 0].tolist()) <= set(replaced.tolist())  # found where they now are
    # Newcomers of outsized salience, in directions of their own, go to the exactly scanned head:
    # they now win most queries, which no list near those queries holds.
    g = torch.Generator().manual_seed(9)
    outliers = admit(mem, F.normalize(torch.randn(20, 32, generator=g), dim=1), 50.0)
    assert recall_at_k(index.top(query, mem, NOW, ALPHA, K)[0], exact_top(mem, query)) >= 0.95
    assert index._index is built and index._in_head[outliers].all()
    assert index._index.ntotal + len(index._head) == 3000
    # An index built on a memory that holds them already puts them in its head too.
    fresh = recall_index.FaissIVFIndex()
    assert recall_at_k(fresh.top(query, mem, NOW, ALPHA, K)[0], exact_top(mem, query)) >= 0.95
    assert torch.equal(fresh._head.sort().values, outliers.sort().values)


@needs_faiss
def test_faiss_index_follows_reencoding_growth_and_clearing(index_every_size):
    mem = filled_memory(2000, capacity=2500)
    index = recall_index.FaissIVFIndex()
    query = clustered(2064)[2000:]
    index.top(query, mem, NOW, ALPHA, K)
    built = index._index
    # Re-encoding rewrites every key: the index is rebuilt on the new ones.
    encoder = torch.nn.Linear(1, 32)
    mem.x[:2000] = torch.randn(2000, 1, generator=torch.Generator().manual_seed(4))
    mem.reencode(encoder)
    query = encoder(torch.randn(64, 1, generator=torch.Generator().manual_seed(5))).detach()
    assert recall_at_k(index.top(query, mem, NOW, ALPHA, K)[0], exact_top(mem, query)) >= 0.95
    assert index._index is not built
    # Appended memories are filed too.
    z_new = clustered(500, seed=7)
    admit(mem, z_new, 50.0)
    assert torch.equal(index.top(z_new, mem, NOW, ALPHA, 1)[0][:, 0], torch.arange(2000, 2500))
    assert index._index.ntotal + len(index._head) == 2500  # every slot filed once: in a list or the head
    # A cleared (or reloaded) memory is indexed afresh.
    state = copy.deepcopy(mem.state_dict())
    mem.clear()
    admit(mem, z_new[:100], 1.0)
    assert torch.equal(index.top(z_new[:100], mem, NOW, ALPHA, 1)[0][:, 0], torch.arange(100))
    assert index._index.ntotal + len(index._head) == 100  # every slot filed once: in a list or the head
    mem.load_state_dict(state)
    assert torch.equal(index.top(z_new, mem, NOW, ALPHA, 1)[0][:, 0], torch.arange(2000, 2500))


@needs_faiss
def test_engine_with_faiss_index_searches_exactly_below_the_threshold_and_copies(monkeypatch):
    mem = filled_memory(2000)
    query = clustered(2016)[2000:]
    engine = RecallEngine(K, "faiss-ivf")
    assert "index=faiss-ivf" in repr(engine)
    # Below EXACT_BELOW memories, the same numbers as exact search, and no index built.
    assert torch.equal(engine.recall(query, mem, NOW, ALPHA), RecallEngine(K).recall(query, mem, NOW, ALPHA))
    assert engine.index._index is None
    monkeypatch.setattr(recall_index, "EXACT_BELOW", 0)
    r = engine.recall(query, mem, NOW, ALPHA)
    assert engine.index._index is not None
    clone = copy.deepcopy(engine)  # a faiss index cannot be copied: the copy starts empty, builds anew
    assert clone.index._index is None
    assert torch.equal(clone.recall(query, mem, NOW, ALPHA), r)


def test_bad_recall_index_is_a_clear_error():
    with pytest.raises(pydantic.ValidationError, match=r"recall_index\n  Input should be 'exact' or 'faiss-ivf'"):
        EpiNetConfig(recall_index="hnsw")
    with pytest.raises(ValueError, match="unknown recall_index 'hnsw': choose one of exact, faiss-ivf"):
        RecallEngine(K, "hnsw")
    # config.py cannot import the module that lists the backends (torch): the two lists agree.
    options = typing.get_args(EpiNetConfig.model_fields["recall_index"].annotation)
    assert options == recall_index.RECALL_INDEXES


def test_faiss_index_without_faiss_installed_names_the_extra(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "faiss" else find_spec(name, *a))
    with pytest.raises(ValueError) as err:
        RecallEngine(K, "faiss-ivf")
    assert "pip install epinet-bench[faiss]" in str(err.value) and "\n" not in str(err.value)


def test_choosing_the_faiss_index_imports_neither_torch_nor_faiss():
    code = (
        "import sys, epinet.config, baselines.epinet as e; "
        "e.config_for(e.EpiNetOptions.model_validate({'recall_index': 'faiss-ivf'}), 100_000); "
        "bad = [m for m in ('torch', 'faiss') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
