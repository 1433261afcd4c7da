import torch
from torch import nn

from epinet import MixtureOfExpertsDecoder


def test_gate_weights_are_a_distribution_over_experts():
    decoder = MixtureOfExpertsDecoder(latent_dim=3, hidden_dim=5, num_classes=4, num_experts=3)
    g = decoder.gate_weights(torch.randn(6, 3), torch.randn(6, 3))
    assert g.shape == (6, 3)
    assert (g > 0).all()
    torch.testing.assert_close(g.sum(dim=1), torch.ones(6))


def test_logits_are_gate_weighted_sum_of_per_expert_mlps():
    torch.manual_seed(0)
    d, hidden, k, e = 3, 5, 4, 3
    decoder = MixtureOfExpertsDecoder(d, hidden, k, e)
    z, r = torch.randn(6, d), torch.randn(6, d)
    h = torch.cat([z, r], dim=1)
    g = torch.softmax(decoder.gate(h), dim=1)
    expected = torch.zeros(6, k)
    for i in range(e):
        w1 = decoder.expert_hidden.weight[i * hidden : (i + 1) * hidden]
        b1 = decoder.expert_hidden.bias[i * hidden : (i + 1) * hidden]
        expert = torch.relu(h @ w1.T + b1) @ decoder.expert_out_weight[i] + decoder.expert_out_bias[i]
        expected += g[:, i : i + 1] * expert
    torch.testing.assert_close(decoder(z, r), expected)


def test_single_expert_is_a_plain_mlp_head():
    d, hidden, k = 4, 6, 3
    decoder = MixtureOfExpertsDecoder(d, hidden, k, num_experts=1)
    mlp = nn.Sequential(nn.Linear(2 * d, hidden), nn.ReLU(), nn.Linear(hidden, k))
    with torch.no_grad():
        mlp[0].weight.copy_(decoder.expert_hidden.weight)
        mlp[0].bias.copy_(decoder.expert_hidden.bias)
        mlp[2].weight.copy_(decoder.expert_out_weight[0].T)
        mlp[2].bias.copy_(decoder.expert_out_bias[0])
    z, r = torch.randn(5, d), torch.randn(5, d)
    assert torch.equal(decoder.gate_weights(z, r), torch.ones(5, 1))
    torch.testing.assert_close(decoder(z, r), mlp(torch.cat([z, r], dim=1)))


def test_experts_start_with_nn_linear_init_scale():
    decoder = MixtureOfExpertsDecoder(latent_dim=8, hidden_dim=100, num_classes=10, num_experts=4)
    assert decoder.expert_out_weight.abs().max() <= 0.1
    assert decoder.expert_out_weight.abs().max() > 0.09
    assert not torch.equal(decoder.expert_out_weight[0], decoder.expert_out_weight[1])
