"""Streams without experience boundaries: the online protocol and task-free scenarios.

The training stream is cut into mini-experiences of ``size`` samples (the run's batch size:
one training iteration each) and each is given to the strategy by its own ``train`` call,
in order, one pass, as Avalanche's online streams (``split_online_stream``) are used. The
cut is made of index tensors over the original experiences' tensors: each mini-experience is
one gather, and none is built before it is trained on.

* **Online protocol** (``online: true``, any benchmark): each original experience is shuffled
  (seeded) and cut on its own, as ``split_online_stream(shuffle=True, drop_last=False)`` does,
  so an experience's last mini-experience may be smaller.
* **Task-free scenario** (``split-mnist-blurry``): each original experience is shuffled the same
  way, then the whole training stream is cut as one, so every mini-experience but the very last
  has ``size`` samples: not even a short chunk marks a boundary. The accuracy matrix's row ``i``
  is evaluated after the mini-experience holding experience ``i``'s last sample (at most
  ``size - 1`` samples of the next one trained on before it).

What reaches the strategy, in both: mini-experiences that differ only in their samples. Each
is a ``MiniExperience`` (a ``TensorExperience`` whose Avalanche dataset is built on demand)
with ``current_experience`` its position in the whole stream, and nothing else: no
``origin_experience``, no ``is_first_subexp`` / ``is_last_subexp`` (Avalanche's
``access_task_boundaries=False``), no class list beyond the classes of its own samples.
Experience-level callbacks (``before/after_training_exp``) fire at every mini-experience, so
they carry no boundary; strategies that need boundaries are refused before the run
(``benchmarks.protocol``, from each strategy's ``needs_boundaries``). Evaluation at the
original boundaries runs on a separate template sharing the model (``benchmarks.runner``), so
the strategy's plugins see no evaluation either.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from avalanche.benchmarks.scenarios.generic_scenario import CLExperience, CLStream
from avalanche.benchmarks.utils.classification_dataset import _make_taskaware_tensor_classification_dataset

from benchmarks.streams import TensorExperience

Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
SEED_OFFSET = 7_919  # the cut's generator: apart from the streams' and training's random draws


class MiniExperience(TensorExperience):
    """A mini-experience: its tensors, and an Avalanche dataset built only if something asks for it
    (the harness's template does not: ``HarnessTemplate(mini_experiences=True)``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor):
        CLExperience.__init__(self, current_experience=None, origin_stream=None)
        self._dataset = None
        self.tensors = (x, y, t)

    @property
    def dataset(self):
        if self._dataset is None:
            x, y, t = self.tensors
            self._dataset = _make_taskaware_tensor_classification_dataset(x, y, task_labels=t, targets=y)
        return self._dataset

    @property
    def classes_in_this_experience(self) -> list[int]:
        return torch.unique(self.tensors[1]).tolist()


@dataclass
class MiniStream:
    """The mini-experiences of ``parts`` (one ``(x, y, t)`` per original experience)."""

    parts: list[Tensors]
    size: int
    across_boundaries: bool  # task-free: one cut over the whole stream
    seed: int = 0

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"mini-experience size must be positive (got {self.size})")
        g = torch.Generator().manual_seed(self.seed + SEED_OFFSET)
        self.orders = [torch.randperm(len(p[1]), generator=g) for p in self.parts]
        self.lengths = [len(p[1]) for p in self.parts]
        self._stream = CLStream("train_online", iter(()), set_stream_info=False)

    def stops(self) -> list[int]:
        """After how many mini-experiences (cumulative) each original experience is complete."""
        if self.across_boundaries:
            total, stops = 0, []
            for n in self.lengths:
                total += n
                stops.append(math.ceil(total / self.size))
            return stops
        return list(itertools.accumulate(math.ceil(n / self.size) for n in self.lengths))

    def __len__(self) -> int:
        return self.stops()[-1] if self.parts else 0

    def _slices(self) -> Iterator[list[tuple[int, torch.Tensor]]]:
        """Each mini-experience as (part, row indices) pieces: one piece, two where a task-free
        chunk spans a boundary."""
        if not self.across_boundaries:
            for p, order in enumerate(self.orders):
                for start in range(0, len(order), self.size):
                    yield [(p, order[start : start + self.size])]
            return
        pending: list[tuple[int, torch.Tensor]] = []
        filled = 0
        for p, order in enumerate(self.orders):
            start = 0
            while start < len(order):
                take = order[start : start + self.size - filled]
                pending.append((p, take))
                filled += len(take)
                start += len(take)
                if filled == self.size:
                    yield pending
                    pending, filled = [], 0
        if pending:
            yield pending

    def __iter__(self) -> Iterator[TensorExperience]:
        for k, pieces in enumerate(self._slices()):
            if len(pieces) == 1:
                p, idx = pieces[0]
                x, y, t = (tensor[idx] for tensor in self.parts[p])
            else:
                x, y, t = (torch.cat([self.parts[p][i][idx] for p, idx in pieces]) for i in range(3))
            mini = MiniExperience(x, y, t)
            mini.current_experience = k
            mini.origin_stream = self._stream
            yield mini


def train_online(strategy, stream: MiniStream) -> Iterator[tuple[int, float]]:
    """Train ``strategy`` on ``stream``'s mini-experiences, one ``train`` call each, without
    evaluation; yield ``(i, seconds)`` when original experience ``i`` is complete, so the caller
    evaluates there (between two mini-experiences, as between two experiences)."""
    stops = stream.stops()
    minis = iter(stream)
    done = 0
    for i, stop in enumerate(stops):
        start = time.perf_counter()
        while done < stop:
            strategy.train(next(minis), eval_streams=[])
            done += 1
        yield i, time.perf_counter() - start
