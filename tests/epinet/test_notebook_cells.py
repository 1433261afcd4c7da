"""The notebook's cell-level checks, as tests (epinet-notebook.txt cells 18-35)."""

import math

import torch

from epinet import EpiNetConfig, EpiNetModel, EpisodicMemory, MixtureOfExpertsDecoder, RecallEngine, decayed_salience


def test_encoder_maps_dummy_image_to_latent_128():
    model = EpiNetModel(EpiNetConfig(preset="notebook", latent_dim=128), "cnn", num_classes=10)
    assert model.encode(torch.randn(1, 1, 28, 28)).shape == (1, 128)


def test_memory_controller_decay_at_ages_0_10_20():
    r = torch.tensor([1.0, 0.5, 2.0])
    now = 1000.0
    tau = torch.tensor([now, now - 10, now - 20], dtype=torch.float64)
    decayed = decayed_salience(r, tau, now, alpha=0.1)
    expected = torch.tensor([1.0, 0.5 * math.exp(-1.0), 2.0 * math.exp(-2.0)])
    torch.testing.assert_close(decayed, expected)


def test_memory_capacity_3_adding_r0_1_to_5_matches_notebook_printout():
    mem = EpisodicMemory(capacity=3, input_shape=(1,), latent_dim=4)
    printed = [[1.0], [1.0, 2.0], [1.0, 2.0, 3.0], [4.0, 2.0, 3.0], [4.0, 5.0, 3.0]]
    for i in range(5):
        mem.admit(
            torch.zeros(1, 1),
            torch.randn(1, 4),
            torch.tensor([float(i + 1)]),
            torch.tensor([i % 2]),
            0,
            now=float(i),
            alpha=0.1,
        )
        assert mem.r0[: len(mem)].tolist() == printed[i]
    assert mem.y.tolist() == [1, 0, 0]


def test_recall_capacity_5_top_k_2_gives_one_embedding_per_query():
    mem = EpisodicMemory(capacity=5, input_shape=(1,), latent_dim=4)
    for i in range(5):
        mem.admit(
            torch.zeros(1, 1),
            torch.randn(1, 4),
            torch.tensor([float(i + 1)]),
            torch.tensor([i % 3]),
            0,
            now=float(i),
            alpha=0.1,
        )
    assert mem.r0.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    r = RecallEngine(top_k=2).recall(torch.randn(2, 4), mem, now=5.0, alpha=0.1)
    assert r.shape == (2, 4)


def test_decoder_logits_shape():
    decoder = MixtureOfExpertsDecoder(latent_dim=128, hidden_dim=256, num_classes=10)
    assert decoder(torch.randn(4, 128), torch.randn(4, 128)).shape == (4, 10)
