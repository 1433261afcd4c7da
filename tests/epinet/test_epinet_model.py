import time

import pydantic
import pytest
import torch
import torch.nn.functional as F

from epinet import EpiNetConfig, EpiNetModel

# The notebook's settings (v1): these tests check its formulas (v2's are in test_epinet_v2.py).
SMALL = dict(preset="notebook", latent_dim=8, capacity=20, top_k=3, hidden_dim=16, num_experts=2)


def small_model(**overrides):
    torch.manual_seed(0)
    return EpiNetModel(EpiNetConfig(**{**SMALL, **overrides}), "mlp", num_classes=4)


def fill(model, n=12, loss=None):
    x = torch.randn(n, 1, 28, 28)
    y = torch.arange(n) % 4
    loss = torch.rand(n) + 0.1 if loss is None else loss
    model.memorize(x, model.encode(x).detach(), loss, y, 1)
    return x, y


def test_config_defaults_are_v2_and_the_notebook_preset_is_v1():
    c = EpiNetConfig()
    assert (c.latent_dim, c.capacity, c.top_k, c.alpha, c.beta, c.num_experts, c.hidden_dim) == (
        128,
        500,
        5,
        1e-3,
        0.5,
        1,
        256,
    )
    assert not c.recall and c.salience == "uniform" and c.class_balanced and c.balance_origin
    assert c.response_weight == 1.0 and c.asymmetric and c.consolidation_epochs == 1 and c.vote_weight == 0
    assert c.recent_share == 0.4
    assert c.reencode_every == 0 and c.clock == "logical" and c.replay_batch_size is None
    assert c.replay_fraction == 0.5 and EpiNetConfig(preset="notebook").replay_fraction == 1.0
    n = EpiNetConfig(preset="notebook")
    assert (n.num_experts, n.beta, n.alpha) == (4, 0.5, 1e-3)
    assert n.recall and n.salience == "loss" and not n.class_balanced and n.reencode_every_experience
    assert not (n.balance_origin or n.asymmetric or n.response_weight or n.consolidation_epochs or n.vote_weight)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(top_k=9, capacity=4), r"top_k \(k=9\) must not exceed capacity \(4\)"),
        (dict(capacity=0), "greater than 0"),
        (dict(alpha=-0.1), "greater than or equal to 0"),
        (dict(beta=-1), "greater than or equal to 0"),
        (dict(alpha=float("nan")), "finite"),
        (dict(reencode_every=-1), "greater than or equal to 0"),
        (dict(replay_batch_size=0), "greater than 0"),
        (dict(replay_fraction=0), "greater than 0"),
        (dict(salience="loud"), "'loss', 'random' or 'uniform'"),
        (dict(clock="sundial"), "'logical' or 'wall'"),
        (dict(capcity=10), "Extra inputs are not permitted"),
    ],
)
def test_config_validation_messages(kwargs, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        EpiNetConfig(**kwargs)


def test_alpha_zero_is_accepted_as_decay_off():
    assert EpiNetConfig(alpha=0).alpha == 0


def test_forward_recalls_in_both_modes_and_changes_nothing():
    model = small_model()
    fill(model)
    x = torch.randn(5, 1, 28, 28)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for mode in (model.train, model.eval):
        mode()
        logits = model(x)
        z = model.encode(x)
        assert logits.shape == (5, 4)
        r = model.recall(z)
        assert r.abs().sum() > 0
        torch.testing.assert_close(logits, model.decoder(z, r))
        with_latent, latent = model.forward_with_latent(x)
        assert torch.equal(with_latent, logits) and not latent.requires_grad
        torch.testing.assert_close(latent, z.detach())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert not hasattr(model, "last_latent")


def test_recall_off_decodes_z_alone():
    model = small_model(recall=False)
    fill(model)
    x = torch.randn(3, 1, 28, 28)
    z = model.encode(x)
    assert model.recall(z) is None
    assert model.decoder.expert_hidden.in_features == 8  # latent_dim: no half for r
    torch.testing.assert_close(model(x), model.decoder(z))
    with pytest.raises(ValueError, match="does not read a recall embedding"):
        model.decoder(z, torch.zeros_like(z))
    assert small_model().decoder.expert_hidden.in_features == 16  # with recall: [z; r]


def test_loss_salience_stores_per_sample_loss_at_clock_time():
    model = small_model()
    for _ in range(4):
        model.tick()
    loss = torch.tensor([0.5, 2.0, 1.0])
    fill(model, n=3, loss=loss)
    assert model.memory.r0[:3].tolist() == loss.tolist()
    assert model.memory.tau[:3].tolist() == [4.0] * 3
    assert model.memory.t[:3].tolist() == [1] * 3


def test_random_salience_draws_uniform_r0_from_global_rng():
    model = small_model(salience="random")
    x = torch.randn(6, 1, 28, 28)
    z = model.encode(x).detach()
    torch.manual_seed(123)
    expected = torch.rand(6)
    torch.manual_seed(123)
    model.memorize(x, z, torch.full((6,), 99.0), torch.zeros(6, dtype=torch.long), 0)
    assert torch.equal(model.memory.r0[:6], expected)


def test_replay_term_is_beta_times_cross_entropy_on_sampled_memories():
    model = small_model(beta=0.25)
    assert model.replay_slots(4) is None  # empty memory
    fill(model)
    slots = model.replay_slots(4, generator=torch.Generator().manual_seed(5))
    x, y, _ = model.memory.sample(4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(model.memory.x[slots], x)
    replay = model.memory_loss(slots)
    torch.testing.assert_close(replay, 0.25 * F.cross_entropy(model(x), y))
    assert replay.requires_grad
    assert len(model.replay_slots(6)) == 6  # as many as the batch by default
    fixed = small_model(replay_batch_size=3)
    fill(fixed)
    assert len(fixed.replay_slots(6)) == 3
    half = small_model(replay_fraction=0.5)  # ceil(0.5 * batch), unless replay_batch_size is set
    fill(half)
    assert (len(half.replay_slots(6)), len(half.replay_slots(7)), len(half.replay_slots(1))) == (3, 4, 1)


def test_replay_term_applies_mask_with_stored_task_labels():
    model = small_model()
    fill(model)
    seen = []

    def mask_logits(logits, task_labels):
        seen.append(task_labels.clone())
        return logits.masked_fill(torch.arange(4) >= 2, float("-inf"))

    model.memory_loss(model.replay_slots(5), mask_logits=mask_logits)
    assert seen[0].tolist() == [1] * 5


def test_beta_zero_skips_replay():
    model = small_model(beta=0)
    fill(model)
    assert model.replay_slots(4) is None


def test_reencode_memory_uses_current_encoder():
    model = small_model()
    x, _ = fill(model)
    with torch.no_grad():
        model.encoder[1].weight.mul_(2.0)
    stale = model.memory.z[:12].clone()
    model.reencode_memory()
    fresh = model.encode(x).detach()
    assert not torch.allclose(stale, fresh)
    torch.testing.assert_close(model.memory.z[:12], fresh)
    torch.testing.assert_close(model.memory.c[:12], F.normalize(fresh, dim=1))


def test_state_dict_round_trip_predicts_identically():
    model = small_model(clock="logical")
    fill(model, n=25)
    for _ in range(7):
        model.tick()
    model.eval()
    x = torch.randn(6, 1, 28, 28)
    torch.manual_seed(99)  # different init
    restored = EpiNetModel(model.config, "mlp", num_classes=4)
    restored.load_state_dict(model.state_dict())
    restored.eval()
    assert len(restored.memory) == 20 and restored.iterations == 7
    assert torch.equal(restored(x), model(x))


def test_to_moves_and_casts_memory_and_clock():
    model = small_model()
    fill(model)
    model.to(torch.float64)
    assert model.memory.z.dtype == model.memory.x.dtype == torch.float64
    assert model.memory.y.dtype == model.clock.ticks.dtype == torch.long
    assert model(torch.randn(2, 1, 28, 28, dtype=torch.float64)).dtype == torch.float64


def test_wall_clock_stamps_seconds():
    model = small_model(clock="wall")
    before = time.time()
    fill(model, n=2)
    assert before <= model.memory.tau[0].item() <= time.time()


def test_class_balanced_config_reaches_memory():
    assert small_model(class_balanced=True).memory.class_balanced
