"""EpiNet's boundary-free triggers: origins from the clock's time buckets (``origin_every``) and
the consolidation pass every N ticks (``consolidate_every``), by hand."""

import torch

from epinet import EpiNetConfig, EpiNetModel

SMALL = dict(latent_dim=8, capacity=40, top_k=3, hidden_dim=16, num_experts=1, replay_batch_size=4)


def small_model(**overrides):
    torch.manual_seed(0)
    return EpiNetModel(EpiNetConfig(**{**SMALL, **overrides}), "mlp", num_classes=4)


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.arange(n) % 4


def test_origin_is_the_time_bucket_with_origin_every():
    model = small_model(origin_every=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for step in range(7):  # 7 iterations of 4 samples: stamped at ticks 0..6 -> buckets 0,0,0,1,1,1,2
        x, y = batch(seed=step)
        model.observe(x, y, 0, optimizer)
    assert model.memory.e[:28].tolist() == [0] * 12 + [1] * 12 + [2] * 4
    assert int(model.experience) == 0  # no experience ended


def test_origin_is_the_experience_count_by_default():
    model = small_model()
    x, y = batch()
    model.observe(x, y, 0, torch.optim.SGD(model.parameters(), lr=0.0))
    model.end_experience()
    model.observe(x, y, 0, torch.optim.SGD(model.parameters(), lr=0.0))
    assert model.memory.e[:8].tolist() == [0] * 4 + [1] * 4


def test_consolidation_runs_every_n_ticks(monkeypatch):
    model = small_model(consolidate_every=2, consolidation_epochs=1)
    passes = []
    monkeypatch.setattr(model, "consolidate", lambda optimizer, batch_size, mask=None: passes.append(model.iterations))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for step in range(5):
        x, y = batch(seed=step)
        model.observe(x, y, 0, optimizer)
    assert passes == [2, 4]
    off = small_model(consolidate_every=0)
    monkeypatch.setattr(off, "consolidate", lambda *a, **k: passes.append("off"))
    off.observe(*batch(), 0, torch.optim.SGD(off.parameters(), lr=0.0))
    assert "off" not in passes
