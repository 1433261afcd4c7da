"""Synaptic Intelligence (SI; Zenke, Poole and Ganguli, ICML 2017) as the DER paper ran it.

Each parameter's importance is the loss decrease it was responsible for along its training
trajectory, normalised by how far it moved; a quadratic penalty then holds important
parameters near their value at the end of the previous experience. The formulas follow the
DER paper's code (Mammoth ``models/si.py`` of 2020, whose numbers Buzzega et al. report):

* each step: ``loss = CE + c * sum(Omega * (theta - theta_anchor)^2)``; after backward every
  gradient is clipped to [-1, 1] (``clip_grad_value_``), and
  ``small_omega += lr * grad^2`` with that clipped gradient of the regularised loss (the
  path integral ``-grad . delta_theta`` of a plain SGD step), ``lr`` the optimiser's
  learning rate (``setup.lr``, also under Adam, as a measure of the step);
* after each experience: ``Omega += small_omega / ((theta - theta_anchor)^2 + xi)``, then
  ``theta_anchor = theta`` and ``small_omega = 0``; the first anchor is the initialisation.

Options: ``c`` (penalty strength) and ``xi`` (damping). The DER paper's settings (SGD,
``mlp_width`` 100, pixels in [0, 1], no validation hold-out, one epoch): Split-MNIST lr 0.1,
c 1.0, xi 0.9, batch 10; Permuted-MNIST lr 0.1, c 0.5, xi 1.0, batch 128.

Later Mammoth versions changed ``small_omega`` to Zenke's path integral of the task loss alone
(``grad_CE * (theta_before - theta_after)``, 2024), which the DER paper's numbers predate.

Avalanche's ``SynapticIntelligencePlugin`` is not used: its penalty is ``lambda / 2 *
sum(Omega * (theta - anchor)^2)``, it clamps every importance to at most 0.001 (hard-coded
``clip_to``), its damping ``eps`` defaults to 1e-7, it accumulates the unclipped gradient of
the regularised loss times the actual step and does not clip gradients, and it copies every
parameter and gradient to the CPU each step. The DER paper's ``c`` and ``xi`` would mean
something else there.
"""

from pydantic import BaseModel, ConfigDict, PositiveFloat

from baselines.registry import register_strategy


class SIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    c: PositiveFloat = 1.0  # penalty strength
    xi: PositiveFloat = 1.0  # damping of the importance's denominator


@register_strategy(
    "si", options=SIOptions, needs_boundaries="consolidates its importances and anchor at the end of each experience"
)
def build(setup, options: SIOptions):
    from baselines.regularisers import SIPlugin

    plugin = SIPlugin(c=options.c, xi=options.xi, lr=setup.lr)
    return setup.strategy(setup.classifier(), plugins=[plugin])
