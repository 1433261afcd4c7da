"""EpiNet v2's mechanisms against hand-computed values: stored responses, the asymmetric
current-batch loss, label-carrying recall, reconsolidation, storage balanced over origin,
the consolidation pass, uniform salience, slow weights and the notebook preset."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from epinet import EpiNetConfig, EpiNetModel, EpisodicMemory, RecallEngine, stratum_keys
from epinet.config import NOTEBOOK_PRESET
from epinet.slow_weights import SlowWeights

SMALL = dict(latent_dim=8, capacity=12, top_k=3, hidden_dim=16, num_experts=1, beta=0.5, replay_batch_size=4)


def small_model(**overrides):
    torch.manual_seed(0)
    return EpiNetModel(EpiNetConfig(**{**SMALL, **overrides}), "mlp", num_classes=4)


def batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.arange(n) % 4


def test_stored_responses_are_the_unmasked_logits_and_replay_distils_toward_them():
    model = small_model(response_weight=2.0)
    x, y = batch()
    logits, z = model.forward_with_latent(x)
    model.store(x, z, logits, y, 0)
    torch.testing.assert_close(model.memory.logits[:6], logits.detach())

    slots = torch.tensor([0, 3, 5])
    stored = model.memory.logits[slots].clone()
    out = model(model.memory.x[slots])
    expected = 0.5 * F.cross_entropy(out, y[slots]) + 2.0 * ((out - stored) ** 2).mean()
    torch.testing.assert_close(model.memory_loss(slots), expected)


def test_memory_keeps_responses_only_when_asked_and_insists_on_them():
    assert "logits" not in small_model(response_weight=0.0).memory.fields
    model = small_model(response_weight=1.0)
    x, y = batch()
    with pytest.raises(ValueError, match="logits must be given exactly when"):
        model.memory.admit(x, torch.zeros(6, 8), torch.ones(6), y, 0, 0.0, 0.0)
    mem = EpisodicMemory(5, (1, 28, 28), 8, num_classes=4)
    assert mem.nbytes == EpisodicMemory.planned_nbytes(5, (1, 28, 28), 8, num_classes=4)
    assert mem.nbytes - EpisodicMemory(5, (1, 28, 28), 8).nbytes == 5 * 4 * 4  # four float32 logits a slot


def test_asymmetric_loss_sees_only_present_and_unseen_classes():
    model = small_model(asymmetric=True)
    model.seen_classes[:] = torch.tensor([True, True, True, False])  # classes 0-2 seen, 3 not yet
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, 1.0, 3.0, 0.2]])
    y = torch.tensor([2, 2])
    # Allowed: class 2 (present) and class 3 (never seen); 0 and 1 are masked out.
    expected = (
        -(
            math.log(math.exp(0.5) / (math.exp(0.5) + math.exp(-1.0)))
            + math.log(math.exp(3.0) / (math.exp(3.0) + math.exp(0.2)))
        )
        / 2
    )
    assert model.current_batch_loss(logits, y).item() == pytest.approx(expected, rel=1e-6)
    assert small_model().current_batch_loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item())


def test_label_carrying_recall_votes_with_the_recall_weights():
    mem = EpisodicMemory(4, (1,), 2)
    keys = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    mem.admit(torch.zeros(4, 1), keys, torch.tensor([1.0, 3.0, 2.0, 5.0]), torch.tensor([0, 1, 1, 2]), 0, 0.0, 0.0)
    r, votes = RecallEngine(top_k=2).recall_with_votes(torch.tensor([[1.0, 0.1]]), mem, 0.0, 0.0, num_classes=3)
    # scores: 1*0.995, 3*0.856, 2*0.0995, 5*(-0.995): top-2 are slots 1 (class 1) and 0 (class 0),
    # weighted by salience 3 and 1.
    torch.testing.assert_close(votes, torch.tensor([[0.25, 0.75, 0.0]]))
    torch.testing.assert_close(r, torch.tensor([[0.25 * 1.0 + 0.75 * 0.8, 0.75 * 0.6]]))


def test_forward_mixes_votes_in_evaluation_only():
    model = small_model(vote_weight=0.4, recall=False)
    x, y = batch()
    logits, z = model.forward_with_latent(x)
    model.store(x, z, logits, y, 0)
    torch.testing.assert_close(model(x), model.decoder(model.encode(x)))  # training: decoder logits
    model.eval()
    z = model.encode(x)
    _, votes = model.recall_engine.recall_with_votes(z, model.memory, model.clock.now(), model.config.alpha, 4)
    expected = torch.log(0.6 * F.softmax(model.decoder(z), dim=1) + 0.4 * votes)
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize(
    ("mode", "tau_refreshed", "r0_refreshed"),
    [("none", False, False), ("tau", True, False), ("r0", False, True), ("both", True, True)],
)
def test_replay_reconsolidates_the_replayed_episodes(mode, tau_refreshed, r0_refreshed):
    model = small_model(reconsolidate=mode, salience="uniform")
    x, y = batch()
    logits, z = model.forward_with_latent(x)
    model.store(x, z, logits, y, 0)  # stored at time 0 with r0 = 1, then the clock ticks
    for _ in range(5):
        model.tick()
    assert model.iterations == 6
    slots = torch.tensor([1, 4])
    per_sample = F.cross_entropy(model(model.memory.x[slots]), y[slots], reduction="none").detach()
    model.memory_loss(slots)
    assert model.memory.tau[slots].tolist() == ([6.0, 6.0] if tau_refreshed else [0.0, 0.0])
    expected_r0 = per_sample if r0_refreshed else torch.ones(2)
    torch.testing.assert_close(model.memory.r0[slots], expected_r0)
    assert model.memory.tau[[0, 2, 3, 5]].tolist() == [0.0] * 4 and model.memory.r0[[0, 2, 3, 5]].tolist() == [1.0] * 4


def test_stratum_keys_combine_class_and_origin():
    classes, origins = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 2])
    assert stratum_keys(classes, None).tolist() == [0, 1, 0, 1]
    assert stratum_keys(None, origins).tolist() == [0, 0, 1, 2]
    assert len(set(stratum_keys(classes, origins).tolist())) == 4
    with pytest.raises(ValueError, match="needs a class, an origin or both"):
        stratum_keys(None, None)


def test_storage_balanced_over_origin_keeps_old_experiences_when_classes_repeat():
    # Permuted-MNIST's case: every experience has the same classes, so class balance alone
    # lets the newest (highest-salience) experience take over.
    def fill(by_origin):
        mem = EpisodicMemory(4, (1,), 2, class_balanced=True, by_origin=by_origin)
        y = torch.tensor([0, 1, 0, 1])
        mem.admit(torch.zeros(4, 1), torch.ones(4, 2), torch.ones(4), y, 0, 0.0, 0.0, origin=0)
        mem.admit(torch.ones(4, 1), torch.ones(4, 2), torch.full((4,), 2.0), y, 0, 0.0, 0.0, origin=1)
        return sorted(mem.e.tolist())

    assert fill(by_origin=False) == [1, 1, 1, 1]
    assert fill(by_origin=True) == [0, 0, 1, 1]


def test_end_experience_stamps_the_next_origin():
    model = small_model()
    x, y = batch()
    logits, z = model.forward_with_latent(x)
    model.store(x, z, logits, y, 0)
    model.end_experience()
    model.store(x, z, logits, y, 0)
    assert model.memory.e[:12].tolist() == [0] * 6 + [1] * 6


def test_consolidation_trains_on_memory_alone_for_the_configured_epochs():
    model = small_model(consolidation_epochs=3, reencode_every_experience=False)
    x, y = batch(n=10)
    logits, z = model.forward_with_latent(x)
    model.store(x, z, logits, y, 0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(1))
    before = [p.detach().clone() for p in model.parameters()]
    model.end_experience(optimizer, batch_size=4)
    assert len(steps) == 3 * 3  # 3 epochs of ceil(10 / 4) minibatches
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    model.end_experience()  # no optimizer: nothing to consolidate with
    assert len(steps) == 9


def test_uniform_salience_stores_r0_one():
    model = small_model(salience="uniform")
    x, y = batch()
    logits, z = model.forward_with_latent(x)
    model.store(x, z, logits, y, 0)
    assert model.memory.r0[:6].tolist() == [1.0] * 6


def test_notebook_preset_restores_the_notebook_settings_and_explicit_options_win():
    notebook = EpiNetConfig(preset="notebook")
    assert {k: getattr(notebook, k) for k in NOTEBOOK_PRESET} == NOTEBOOK_PRESET
    assert EpiNetConfig(preset="notebook", beta=2.0).beta == 2.0
    with pytest.raises(ValueError, match="'default' or 'notebook'"):
        EpiNetConfig(preset="v3")


def test_latents_and_keys_are_stored_only_when_something_recalls():
    assert not small_model(recall=False).memory.store_keys
    assert small_model(recall=False, vote_weight=0.2).memory.store_keys
    model = small_model(recall=False, reencode_every_experience=True)
    assert "z" not in model.memory.fields and "c" not in model.memory.fields
    x, y = batch()
    logits, z = model.forward_with_latent(x)
    model.store(x, z, logits, y, 0)
    model.end_experience()  # re-encoding has nothing to refresh
    assert len(model.memory) == 6
    keyless = EpisodicMemory(5, (1, 28, 28), 8, store_keys=False)
    assert keyless.nbytes == EpisodicMemory(5, (1, 28, 28), 8).nbytes - 5 * 2 * 8 * 4  # z and c, float32
    assert keyless.nbytes == EpisodicMemory.planned_nbytes(5, (1, 28, 28), 8, store_keys=False)


def test_average_follows_the_warmed_up_rate_by_hand():
    layer = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(2.0)
    slow = SlowWeights({"layer": layer}, decay=0.5)
    for value in (12.0, 4.0, 0.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        slow.update({"layer": layer})
    # d_0 = min(0.5, 1/10) = 0.1: 0.1 * 2 + 0.9 * 12 = 11.0
    # d_1 = min(0.5, 2/11) = 2/11: (2/11) * 11 + (9/11) * 4 = 2 + 36/11 = 58/11
    # d_2 = min(0.5, 3/12) = 0.25: 0.25 * 58/11 + 0 = 14.5/11
    assert slow.averages("layer")[0].item() == pytest.approx(14.5 / 11)
    assert int(slow.updates) == 3 and slow.rate() == pytest.approx(min(0.5, 4 / 13))
    # The layer computed with the slow weight, not its own (0):
    assert slow.call("layer", layer, torch.ones(1, 1)).item() == pytest.approx(14.5 / 11)


def test_training_step_updates_slow_weights_and_evaluation_uses_them():
    model = small_model(slow_decay=0.9, consolidation_epochs=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    for _ in range(3):
        model.observe(x, y, 0, optimizer)
    assert len(model.memory) == 12  # full: 18 offered
    model.end_experience(optimizer, batch_size=4)  # one epoch over 12 memories: 3 steps
    assert int(model.slow.updates) == 3 + 3
    # A copy of the network holding the slow weights as its own computes what eval mode computes.
    twin = copy.deepcopy(model)
    twin.slow = None
    with torch.no_grad():
        for key in model.network:
            for p, w in zip(twin.network[key].parameters(), model.slow.averages(key)):
                p.copy_(w)
    model.eval(), twin.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), twin(x))
        assert not torch.allclose(model(x), model.train()(x))  # training computes with the fast weights


def test_slow_weights_are_buffers_saved_with_the_model_not_parameters():
    model = small_model(slow_decay=0.9)
    plain = small_model()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    model.observe(x, y, 0, optimizer)
    model.observe(x, y, 0, optimizer)
    restored = small_model(slow_decay=0.9)
    restored.load_state_dict(model.state_dict())
    model.eval(), restored.eval()
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))


def test_slow_weights_are_off_by_default_and_a_decay_of_one_is_refused():
    assert small_model().slow is None
    with pytest.raises(ValidationError, match="slow_decay"):
        EpiNetConfig(slow_decay=1.0)


def test_recent_share_replays_the_current_origins_episodes():
    model = small_model(recent_share=0.75, reencode_every_experience=False)  # 4 replayed per step
    x, y = batch(n=6)
    logits, z = model.forward_with_latent(x)
    model.store(x, z, logits, y, 0)
    assert len(model.replay_slots(128)) == 4  # one origin only: a uniform draw
    model.end_experience()
    model.store(x, z, logits, y, 0)  # origin 1: slots 6-11
    for _ in range(5):
        slots = model.replay_slots(128)
        assert (model.memory.e[slots] == 1).sum() == 3  # round(0.75 * 4) from the present
    with pytest.raises(ValidationError, match="recent_share"):
        EpiNetConfig(recent_share=1.5)
