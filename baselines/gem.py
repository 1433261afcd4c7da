"""Gradient Episodic Memory (GEM; Lopez-Paz & Ranzato, NeurIPS 2017).

The memory keeps ``memory // n_experiences`` samples of each finished experience, a uniform
random subset stored when the experience ends (Mammoth ``models/gem.py``; the paper's code
kept the last samples seen instead). Each step computes the loss gradient on each earlier
experience's memory; if the step's gradient has a negative dot product with any of them, it is
replaced by the closest gradient that has none, found by GEM's dual QP with quadprog
(``baselines.gradient_projection.gem_project``). ``gamma`` is the margin (the paper's
"memory strength" γ): as in the authors' code, Mammoth and Avalanche, the dual variables are
bounded below by it, and 1e-3 is added to the diagonal of GG'.

Avalanche's ``GEMPlugin`` has the same memory selection and the same QP, but its memory loss
ignores the harness's task-incremental logit mask, it runs one forward/backward per earlier
experience each step (19 on 20-experience Permuted-MNIST), and it fills the memory through a
per-sample ``DataLoader``; here all constraint gradients come from one ``vmap``-ed pass, on
tensors. GG' and Gg are summed in float32 (the QP itself is float64).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, NonNegativeFloat

from baselines.registry import register_strategy
from baselines.replay import planned_bytes


class GEMOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gamma: NonNegativeFloat = 0.5  # margin: lower bound on the QP's dual variables


def per_experience(setup, strategy: str) -> int:
    """Samples kept per experience: the memory budget split evenly over the stream's experiences."""
    per = setup.memory // setup.n_experiences
    if per < 1:
        raise ValueError(
            f"{strategy} keeps memory // n_experiences samples per experience: memory ({setup.memory})"
            f" must be at least the number of experiences ({setup.n_experiences})"
        )
    return per


def memory_bytes(strategy) -> int:
    from baselines.gradient_projection import memory_plugin

    return memory_plugin(strategy).memory.nbytes()


@register_strategy(
    "gem",
    options=GEMOptions,
    memory_bytes=memory_bytes,
    planned_bytes=planned_bytes,
    needs_boundaries="stores a memory per experience at its end, one gradient constraint each",
)
def build(setup, options: GEMOptions):
    from baselines.gradient_projection import GEMPlugin

    plugin = GEMPlugin(per_experience(setup, "gem"), margin=options.gamma)
    return setup.strategy(setup.classifier(), plugins=[plugin])
