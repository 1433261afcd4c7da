import pytest
import torch

from epinet import BACKBONES, make_backbone


@pytest.mark.parametrize(("name", "feature_dim"), [("mlp", 400), ("cnn", 3136)])
def test_backbone_feature_dim(name, feature_dim):
    module, dim = make_backbone(name)
    assert dim == feature_dim
    assert module(torch.randn(2, 1, 28, 28)).shape == (2, feature_dim)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_backbones_are_fresh_instances(name):
    """Two builds share no parameter storage and are initialised independently: training one
    (EpiNet's encoder, a baseline's feature extractor) never moves the other."""
    a, dim = make_backbone(name)
    b, _ = make_backbone(name)
    params_a, params_b = list(a.parameters()), list(b.parameters())
    assert len(params_a) == len(params_b) > 0
    assert {p.data_ptr() for p in params_a}.isdisjoint(p.data_ptr() for p in params_b)
    for pa, pb in zip(params_a, params_b, strict=True):
        assert pa.shape == pb.shape and not torch.equal(pa, pb)  # every weight and bias drawn anew
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        before = b(x)
        for p in params_a:
            p.add_(1.0)
        assert torch.equal(b(x), before)  # changing a leaves b as it was
    assert before.shape == (3, dim)


def test_unknown_backbone_lists_known_names():
    assert set(BACKBONES) == {"cnn", "mlp"}
    with pytest.raises(ValueError, match=r"^unknown backbone 'x'; known: cnn, mlp$"):
        make_backbone("x")
