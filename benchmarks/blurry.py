"""Split-MNIST with blurred boundaries: the task-free "Blurry" setting of Rainbow Memory
(Bang et al., CVPR 2021), built from Split-MNIST's experiences.

Classes arrive in order, two per experience, as in ``split-mnist``; then each training
experience ``j`` gives away ``round(blur * n_j)`` of its samples (``n_j`` its size, the samples
drawn from the seed), dealt in turn to the other experiences ``j+1, j+2, ...`` (cyclically), and
every experience is shuffled (seeded). Experience ``i`` then holds its own classes' remaining
samples and the samples it received, all from other experiences' classes: a share
``received_i / (n_i - given_i + received_i)`` of it, ``blur`` exactly when the experiences are
of equal size and the gifts divide evenly (close to it on MNIST, whose classes differ in size
by a few percent). ``blur = 0.1`` is Rainbow Memory's Blurry10.

The stream is task-free (``benchmarks.scenarios``: ``task_free``): the strategy receives it as
mini-experiences with no boundary. The validation and test streams are Split-MNIST's, one
experience per original class pair, unblurred: the accuracy matrix is evaluated at the
original boundaries against the original class sets.
"""

from __future__ import annotations

import torch

from benchmarks.data import MNIST
from benchmarks.streams import Benchmark, _scenario, split_mnist

Parts = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def blur_parts(parts: Parts, blur: float, generator: torch.Generator) -> tuple[Parts, list[list[int]]]:
    """``parts`` (one ``(x, y, t)`` per experience) with boundaries blurred as the module says.

    Returns the blurred parts and ``moved[j][i]``: how many samples experience ``j`` gave to ``i``."""
    if not 0 <= blur < 1:
        raise ValueError(f"blur must be in [0, 1) (got {blur})")
    n = len(parts)
    kept, moved = [], [[0] * n for _ in range(n)]
    received: list[list[tuple[int, torch.Tensor]]] = [[] for _ in range(n)]  # (giver, its rows)
    for j, (_, y, _) in enumerate(parts):
        order = torch.randperm(len(y), generator=generator)
        given = int(round(blur * len(y))) if n > 1 else 0
        kept.append(order[given:])
        gifts = order[:given]
        # deal the gifts in turn to j+1, j+2, ... (mod n), never to j itself
        target = (j + 1 + torch.arange(given) % (n - 1)) % n if n > 1 else torch.zeros(0, dtype=torch.long)
        for i in range(n):
            rows = gifts[target == i]
            moved[j][i] = len(rows)
            if len(rows):
                received[i].append((j, rows))
    out = []
    for i, (x, y, t) in enumerate(parts):
        xs, ys, ts = [x[kept[i]]], [y[kept[i]]], [t[kept[i]]]
        for j, rows in received[i]:
            xs.append(parts[j][0][rows])
            ys.append(parts[j][1][rows])
            ts.append(parts[j][2][rows])
        x_i, y_i, t_i = torch.cat(xs), torch.cat(ys), torch.cat(ts)
        shuffle = torch.randperm(len(y_i), generator=generator)
        out.append((x_i[shuffle], y_i[shuffle], t_i[shuffle]))
    return out, moved


def blurry_split_mnist(
    data: MNIST,
    *,
    seed: int = 0,
    n_experiences: int = 5,
    valid_fraction: float = 0.1,
    train_per_experience: int | None = None,
    blur: float = 0.1,
) -> Benchmark:
    """Split-MNIST's experiences (same seed, same hold-out) with the training stream blurred."""
    base = split_mnist(
        data,
        seed=seed,
        n_experiences=n_experiences,
        valid_fraction=valid_fraction,
        train_per_experience=train_per_experience,
    )
    generator = torch.Generator().manual_seed(seed + 1_000_003)  # apart from split_mnist's own draws
    train, moved = blur_parts([exp.tensors for exp in base.train_stream], blur, generator)
    scenario = _scenario(train, [exp.tensors for exp in base.valid_stream], [exp.tensors for exp in base.test_stream])
    return Benchmark(
        "split-mnist-blurry",
        scenario,
        base.n_classes,
        meta={**base.meta, "blur": blur, "moved": moved},
    )
