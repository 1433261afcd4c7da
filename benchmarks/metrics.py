"""Continual-learning metrics from the accuracy matrix.

``R[i][j]`` is the accuracy on experience ``j`` after training experience ``i``; ``T`` is
the index of the last training experience. The README states the same formulas.

* final accuracy        A = mean_j R[T][j]
* average forgetting    F = mean_{j<T} ( max_{i<T} R[i][j] - R[T][j] )
* backward transfer     BWT = mean_{j<T} ( R[T][j] - R[j][j] )
* learning accuracy     LA = mean_i R[i][i]
* seen accuracy         S_i = mean_{j<=i} R[i][j]   (average accuracy on experiences seen so far)

A joint-training run has a single row (one training phase over all data): only A is defined.
"""

from __future__ import annotations

import numpy as np


def _matrix(R) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] == 0 or R.shape[0] > R.shape[1]:
        raise ValueError(
            f"accuracy matrix must be [n_trained x n_experiences] with rows <= columns, got shape {R.shape}"
        )
    return R


def final_accuracy(R) -> float:
    return float(_matrix(R)[-1].mean())


def average_forgetting(R) -> float | None:
    R = _matrix(R)
    T = R.shape[0] - 1
    if T < 1:
        return None
    return float(np.mean(R[:T, :T].max(axis=0) - R[T, :T]))


def backward_transfer(R) -> float | None:
    R = _matrix(R)
    T = R.shape[0] - 1
    if T < 1:
        return None
    return float(np.mean(R[T, :T] - np.diag(R)[:T]))


def learning_accuracy(R) -> float | None:
    R = _matrix(R)
    if R.shape[0] != R.shape[1]:
        return None
    return float(np.diag(R).mean())


def seen_accuracy(R) -> list[float]:
    R = _matrix(R)
    return [float(R[i, : i + 1].mean()) for i in range(R.shape[0])]


def summarise(R, joint: bool = False) -> dict[str, float | None]:
    if joint:
        return {
            "final_accuracy": final_accuracy(R),
            "average_forgetting": None,
            "backward_transfer": None,
            "learning_accuracy": None,
        }
    return {
        "final_accuracy": final_accuracy(R),
        "average_forgetting": average_forgetting(R),
        "backward_transfer": backward_transfer(R),
        "learning_accuracy": learning_accuracy(R),
    }
