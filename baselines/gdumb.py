"""GDumb (Prabhu, Torr & Dokania, ECCV 2020): a greedy class-balancing sampler and a "dumb"
learner retrained from scratch on the memory alone.

Each experience's training samples pass once through the sampler, in a random order, filling
``memory`` items (``baselines.gdumb_memory``: store while there is room; then a sample of a
class holding fewer than memory / classes-seen items replaces a random item of the largest
class). Then, before each evaluation point (the end of each experience), the model is reset to
its initial weights, the optimiser's state is cleared, and it trains ``epochs`` epochs on the
memory only (the run's ``epochs`` does not apply; the stream itself is never trained on).
``epochs`` defaults to 32 (the authors use 128 on MNIST): on Split-MNIST's validation split
(Adam 1e-3, batch 128, MLP 400, memory 500, seed 0) 8, 16, 32 and 64 epochs gave 0.845, 0.871,
0.862 and 0.878, at 4 steps an epoch.

As in the paper and the authors' code: SGDR (cosine annealing with warm restarts, T_0 = 1,
T_mult = 2) after one warm-up epoch at lr / 10, down to lr / 100 (their 0.05 -> 0.0005);
``sgdr: false`` keeps the run's lr throughout. The run's optimiser, lr and batch size are used
(the paper: SGD, momentum 0.9, batch 16). Left out: cutmix (the authors' MNIST runs do not use
it), random-crop augmentation, gradient clipping at norm 10 and weight decay 1e-6 of the
authors' code, and their reporting of the best test accuracy over epochs. The sampler is the
paper's; the authors' code takes the first memory / classes items of each class instead.
The reset is to the same initial weights each time, as in Avalanche's ``GDumbPlugin``
(Mammoth trains once, after the last experience, on a freshly drawn network; the authors' code
also trains once, on the final memory).

Avalanche's ``GDumbPlugin`` fills a ``ClassBalancedBuffer`` once per experience (a uniform
sample of each class seen so far, including earlier experiences' samples of a class that
returns, as on Permuted-MNIST, where the greedy sampler keeps its first items) and trains on it
through the stock per-sample loader for the run's epochs; so the method is written here, on
tensors.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, PositiveInt

from baselines.registry import register_strategy
from baselines.replay import planned_bytes

MIN_LR_RATIO = 0.01  # SGDR's floor relative to the run's lr: the paper's 0.0005 / 0.05


class GDumbOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: PositiveInt = 32  # on the memory, from scratch, at each experience's end
    sgdr: bool = True  # warm-up epoch, then cosine annealing with warm restarts


def memory_bytes(strategy) -> int:
    from baselines.gdumb_memory import GDumbPlugin

    return next(p for p in strategy.plugins if isinstance(p, GDumbPlugin)).memory.nbytes()


@register_strategy(
    "gdumb",
    options=GDumbOptions,
    memory_bytes=memory_bytes,
    planned_bytes=planned_bytes,
    needs_boundaries="retrains the model from scratch on its memory after each experience",
)
def build(setup, options: GDumbOptions):
    from baselines.gdumb_memory import GDumbPlugin
    from baselines.template import HarnessTemplate

    model = setup.classifier()
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    plugin = GDumbPlugin(setup.memory, initial, sgdr=options.sgdr, min_lr_ratio=MIN_LR_RATIO)
    kwargs = setup.template_kwargs(model) | {"train_epochs": options.epochs}
    return HarnessTemplate(**kwargs, plugins=[plugin, *setup.plugins])
