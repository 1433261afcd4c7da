"""Feature extractors for 28x28 single-channel inputs, selectable by name.

Shared by EpiNet (backbone + latent projection) and the baselines
(backbone + linear head), so they carry no method-specific parts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

# torch is imported inside the builders: the harness validates backbone names (and answers
# bad input) without paying for importing torch.


def mlp_backbone(width: int = 400) -> tuple[nn.Module, int]:
    """The two-hidden-layer ReLU MLP of MNIST continual learning: 2x400 by default, 2x100 in
    the DER paper (Buzzega et al., 2020)."""
    from torch import nn

    module = nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
    )
    return module, width


def cnn_backbone() -> tuple[nn.Module, int]:
    """The notebook ``Encoder``'s convolutional stack (before its projection)."""
    from torch import nn

    module = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=1),  # 28x28
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),  # 14x14
        nn.Conv2d(32, 64, kernel_size=3, stride=1, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),  # 7x7
        nn.Flatten(),
    )
    return module, 64 * 7 * 7


BACKBONES: dict[str, Callable[[], tuple[nn.Module, int]]] = {
    "cnn": cnn_backbone,
    "mlp": mlp_backbone,
}


def check_backbone(name: str) -> str:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    return name


def make_backbone(name: str, mlp_width: int = 400) -> tuple[nn.Module, int]:
    """Build a fresh backbone: (module mapping [B,1,28,28] -> [B,F], F)."""
    if name == "mlp":
        return mlp_backbone(mlp_width)
    if mlp_width != 400:
        raise ValueError(f"mlp_width applies to the mlp backbone only (backbone is {name!r})")
    return BACKBONES[check_backbone(name)]()
