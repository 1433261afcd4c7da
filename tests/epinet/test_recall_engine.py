import math

import torch

from epinet import EpisodicMemory, RecallEngine


def memory_with(z, r0, tau=None, capacity=8):
    z = torch.as_tensor(z, dtype=torch.float32)
    n, d = z.shape
    mem = EpisodicMemory(capacity=capacity, input_shape=(1,), latent_dim=d)
    for i in range(n):  # one at a time so each can carry its own timestamp
        now = 0.0 if tau is None else float(tau[i])
        mem.admit(
            torch.zeros(1, 1), z[i : i + 1], torch.tensor([float(r0[i])]), torch.zeros(1, dtype=torch.long), 0, now, 0.0
        )
    return mem


def test_scores_are_cosine_to_key_times_decayed_salience():
    mem = memory_with([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], r0=[1.0, 2.0, 3.0], tau=[2.0, 1.0, 0.0])
    scores = RecallEngine(top_k=2).scores(torch.tensor([[3.0, 0.0]]), mem, now=2.0, alpha=0.5)
    expected = [1.0 * 1.0, 0.0 * 2.0 * math.exp(-0.5), (1 / math.sqrt(2)) * 3.0 * math.exp(-1.0)]
    torch.testing.assert_close(scores, torch.tensor([expected]))


def test_top_k_selects_by_score_and_weights_by_salience():
    mem = memory_with([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], r0=[1.0, 3.0, 5.0])
    query = torch.tensor([[1.0, 0.2]])
    # scores: 0.98, 0.59, -4.9 -> top-2 = first two; weights 1/4, 3/4 (salience), not by score
    r = RecallEngine(top_k=2).recall(query, mem, now=0.0, alpha=0.0)
    torch.testing.assert_close(r, torch.tensor([[0.25, 0.75]]))


def test_top_1_follows_score_not_salience_ranking():
    mem = memory_with([[1.0, 0.0], [0.0, 1.0]], r0=[1.0, 2.0])
    engine = RecallEngine(top_k=1)
    torch.testing.assert_close(engine.recall(torch.tensor([[1.0, 0.0]]), mem, 0.0, 0.0), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(engine.recall(torch.tensor([[1.0, 1.0]]), mem, 0.0, 0.0), torch.tensor([[0.0, 1.0]]))


def test_fewer_memories_than_k_uses_all_of_them():
    mem = memory_with([[2.0, 0.0], [0.0, 4.0]], r0=[1.0, 1.0])
    r = RecallEngine(top_k=5).recall(torch.randn(3, 2), mem, now=0.0, alpha=0.0)
    torch.testing.assert_close(r, torch.tensor([[1.0, 2.0]] * 3))


def test_weights_sum_to_one():
    v = torch.tensor([0.3, -1.2, 2.0])
    mem = memory_with(v.repeat(6, 1), r0=[0.1, 5.0, 2.0, 0.7, 3.0, 1.0])
    r = RecallEngine(top_k=4).recall(torch.randn(5, 3), mem, now=4.0, alpha=0.3)
    torch.testing.assert_close(r, v.repeat(5, 1))


def test_empty_memory_recalls_zeros():
    mem = EpisodicMemory(capacity=4, input_shape=(1,), latent_dim=3)
    query = torch.randn(2, 3)
    r = RecallEngine(top_k=2).recall(query, mem, now=0.0, alpha=0.1)
    assert torch.equal(r, torch.zeros_like(query))


def test_all_zero_salience_recalls_zeros_not_nan():
    mem = memory_with([[1.0, 0.0], [0.0, 1.0]], r0=[0.0, 0.0])
    r = RecallEngine(top_k=2).recall(torch.randn(2, 2), mem, now=0.0, alpha=0.0)
    assert torch.equal(r, torch.zeros(2, 2))


def test_decay_shifts_weight_towards_recent_memories():
    mem = memory_with([[1.0, 0.0], [0.0, 1.0]], r0=[1.0, 1.0], tau=[0.0, 10.0])
    r = RecallEngine(top_k=2).recall(torch.tensor([[1.0, 1.0]]), mem, now=10.0, alpha=0.1)
    w_old = math.exp(-1.0) / (math.exp(-1.0) + 1.0)
    torch.testing.assert_close(r, torch.tensor([[w_old, 1.0 - w_old]]))


def test_reused_workspace_gives_the_same_recall_as_fresh_storage():
    g = torch.Generator().manual_seed(0)
    mem = memory_with(torch.randn(30, 4, generator=g), r0=torch.rand(30, generator=g).tolist(), capacity=30)
    engine = RecallEngine(top_k=3)
    for b in (7, 2, 7):  # the workspace is reused across calls and batch sizes
        query = torch.randn(b, 4, generator=g, requires_grad=True)
        fresh = engine.recall(query, mem, now=0.0, alpha=0.0)  # autograd on: no workspace
        with torch.no_grad():
            reused = engine.recall(query, mem, now=0.0, alpha=0.0)
        assert engine.index._workspace is not None
        assert torch.equal(fresh, reused)
        scores = engine.scores(query.detach(), mem, now=0.0, alpha=0.0)
        with torch.no_grad():
            engine.recall(torch.randn(b, 4, generator=g), mem, now=0.0, alpha=0.0)  # another query
        assert torch.equal(scores, engine.scores(query.detach(), mem, now=0.0, alpha=0.0))  # not overwritten
