import pytest
import torch

from epinet import BACKBONES, make_backbone


@pytest.mark.parametrize(("name", "feature_dim"), [("mlp", 400), ("cnn", 3136)])
def test_backbone_feature_dim(name, feature_dim):
    module, dim = make_backbone(name)
    assert dim == feature_dim
    assert module(torch.randn(2, 1, 28, 28)).shape == (2, feature_dim)


def test_backbones_are_fresh_instances():
    a, _ = make_backbone("mlp")
    b, _ = make_backbone("mlp")
    assert a is not b
    assert not torch.equal(a[1].weight, b[1].weight)


def test_unknown_backbone_lists_known_names():
    assert set(BACKBONES) == {"cnn", "mlp"}
    with pytest.raises(ValueError, match=r"^unknown backbone 'x'; known: cnn, mlp$"):
        make_backbone("x")
