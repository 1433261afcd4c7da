"""Averaged GEM (A-GEM; Chaudhry et al., ICLR 2019).

The memory is GEM's: ``memory // n_experiences`` samples of each finished experience, a
uniform random subset stored when it ends (Mammoth ``models/agem.py``). Each step draws
``replay_batch_size`` distinct samples uniformly from the whole memory and takes the loss
gradient on them as the reference g_ref; if the step's gradient g has g.g_ref < 0 it becomes
g - (g.g_ref / g_ref.g_ref) g_ref (the paper's eq. 11, Mammoth's ``project``). No options
beyond the run's ``replay_batch_size``.

Avalanche's ``AGEMPlugin`` projects alike but draws the reference sample experience-balanced
(``sample_size // experiences`` from each, through a per-sample ``DataLoader``), not uniformly
from the memory as the paper's code and Mammoth do, and its memory loss ignores the harness's
task-incremental logit mask; so the method is written here, on tensors.
"""

from __future__ import annotations

from baselines.gem import memory_bytes, per_experience
from baselines.registry import register_strategy
from baselines.replay import planned_bytes


@register_strategy(
    "agem",
    memory_bytes=memory_bytes,
    planned_bytes=planned_bytes,
    needs_boundaries="stores a memory per experience at its end (its reference gradients)",
)
def build(setup, options):
    from baselines.gradient_projection import AGEMPlugin

    plugin = AGEMPlugin(per_experience(setup, "agem"), sample_size=setup.replay_mb_size)
    return setup.strategy(setup.classifier(), plugins=[plugin])
