"""Rotated-MNIST: a domain-incremental stream, every experience rotating all its images by one angle.

Angles: the ``n`` angles ``k * 180 / n`` degrees (``k = 0 .. n-1``), evenly spaced over
[0, 180), visited in an order drawn from the seed (``torch.randperm``), so the upright
images are not always the first experience. The angle set is fixed by ``n``; the seed decides
only the order (and the validation hold-out), so two seeds see the same domains in different
orders.

Each experience's images are rotated once, as whole tensors (``affine_grid`` +
``grid_sample``, bilinear, about the image centre, counter-clockwise), when the stream is
built: no per-sample transform runs during training. Pixels rotated in from outside the
image take the background's value (the darkest pixel of the data, 0 before standardisation),
so the stream works at either input scale. As in Permuted-MNIST, every experience has all ten
classes, one head, no task label; ``valid_fraction`` of each training experience is held out
(seeded) in ``valid_stream``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmarks.data import MNIST, N_CLASSES
from benchmarks.streams import Benchmark, _holdout, _scenario, append_domain_experience

CHUNK = 8192  # images rotated at once: bounds the sampling grid's memory


def angles(n_experiences: int, seed: int) -> list[float]:
    """The experiences' angles in degrees: ``k * 180 / n`` in the seeded order."""
    order = torch.randperm(n_experiences, generator=torch.Generator().manual_seed(seed))
    return [float(k) * 180.0 / n_experiences for k in order.tolist()]


def rotate(x: torch.Tensor, degrees: float, background: float) -> torch.Tensor:
    """Images ``x`` ([N, C, H, W]) rotated counter-clockwise by ``degrees``; outside pixels get ``background``."""
    if degrees % 360 == 0:
        return x.clone()
    a = math.radians(degrees)
    # affine_grid maps output coordinates to input ones: the inverse rotation (y axis points down)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]], dtype=x.dtype)
    out = torch.empty_like(x)
    for start in range(0, len(x), CHUNK):
        part = x[start : start + CHUNK]
        grid = F.affine_grid(theta.expand(len(part), 2, 3), list(part.shape), align_corners=False)
        out[start : start + CHUNK] = (
            F.grid_sample(part - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            + background
        )
    return out


def rotated_mnist(
    data: MNIST,
    *,
    seed: int = 0,
    n_experiences: int = 10,
    valid_fraction: float = 0.1,
    train_per_experience: int | None = None,
) -> Benchmark:
    """Rotated-MNIST: experience ``i`` shows every image rotated by ``angles(n, seed)[i]``."""
    if n_experiences < 1:
        raise ValueError(f"n_experiences must be positive (got {n_experiences})")
    chosen = angles(n_experiences, seed)
    generator = torch.Generator().manual_seed(seed)
    background = float(min(data.train_x.min(), data.test_x.min()))
    streams: tuple[list, list, list] = ([], [], [])
    for degrees in chosen:
        append_domain_experience(
            streams,
            data,
            _holdout(len(data.train_y), valid_fraction, generator, train_per_experience),
            lambda x, rows, degrees=degrees: rotate(x[rows], degrees, background),
        )
    return Benchmark("rotated-mnist", _scenario(*streams), N_CLASSES, meta={"angles": chosen})
