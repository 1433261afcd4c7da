"""Selection balanced over strata: the class-balanced (and time-balanced) eviction rule."""

from __future__ import annotations

import torch
from torch import Tensor


def stratum_keys(classes: Tensor | None, origins: Tensor | None) -> Tensor:
    """One integer key per item naming its stratum: its class, its origin (experience or time
    bucket), or the pair, whichever are given. At least one must be."""
    if classes is None and origins is None:
        raise ValueError("a stratum needs a class, an origin or both")
    if origins is None:
        return classes
    if classes is None:
        return origins
    return classes * (int(origins.max()) + 1) + origins


def class_balanced_top(salience: Tensor, labels: Tensor, k: int) -> Tensor:
    """Boolean mask choosing k items: each class's top ``k // n_classes`` by
    salience, then the highest-salience remaining items. Ties go to lower
    indices. Requires ``salience.numel() >= k``. ``labels`` may be any stratum key
    (see :func:`stratum_keys`); "class" below means stratum."""
    n = salience.numel()
    _, group = torch.unique(labels, return_inverse=True)
    n_groups = int(group.max()) + 1
    quota = k // n_groups

    by_salience = torch.sort(salience, descending=True, stable=True).indices
    # Stable re-sort by class keeps salience order inside each class.
    by_class = by_salience[torch.sort(group[by_salience], stable=True).indices]
    counts = torch.bincount(group, minlength=n_groups)
    class_start = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.empty(n, dtype=torch.long, device=salience.device)
    rank_in_class[by_class] = torch.arange(n, device=salience.device) - class_start[group[by_class]]

    keep = rank_in_class < quota
    leftover = k - int(keep.sum())
    remaining = by_salience[~keep[by_salience]]
    keep[remaining[:leftover]] = True
    return keep
