"""Online EWC (Schwarz et al., ICML 2018, "Progress & Compress") as the DER paper ran it.

One running Fisher estimate and one anchor replace EWC's penalty per experience. The formulas
follow the DER paper's code (Mammoth ``models/ewc_on.py``, unchanged in substance since 2020):

* after each experience, over its training samples (x_i, y_i), y_i the true label:
  ``F_new = sum_i p(y_i|x_i) * (d log p(y_i|x_i) / d theta)^2 / (ceil(N / B) * B)`` (per-sample
  gradients weighted by the model's probability of the true label; Mammoth divides by its
  loader's minibatches times the batch size B, N up to the last minibatch's shortfall);
  ``F = gamma * F + F_new``; ``anchor = theta``;
* each step: ``loss = CE + e_lambda * sum(F * (theta - anchor)^2)``, without a factor 1/2
  (Mammoth adds ``e_lambda * penalty`` to the loss, later its closed-form gradient
  ``2 * e_lambda * F * (theta - anchor)``: the same).

The sum over samples is vectorised in chunks of bounded memory
(``baselines.regularisers.PerSampleFisher``): exact closed form for linear layers,
``torch.func`` per-sample gradients for the other parameters. Options: ``e_lambda`` and ``gamma`` (decay of the
old estimate, in (0, 1]). The DER paper's settings (SGD, ``mlp_width`` 100, pixels in [0, 1],
no validation hold-out, one epoch): Split-MNIST lr 0.03, e_lambda 90, gamma 1.0, batch 10;
Permuted-MNIST lr 0.1, e_lambda 0.7, gamma 1.0, batch 128.

Why not ``ewc`` with ``mode: online`` (Avalanche's ``EWCPlugin``): its importance is the
square of each *minibatch-mean* gradient of the loss, averaged over minibatches, unweighted
by p(y|x). The square of a mean of B gradients is the squared mean gradient plus 1/B of their
variance: near a minimum about 1/B of the per-sample estimate, and it moves with the batch
size B, so the paper's ``e_lambda`` values do not transfer to it. ``ewc`` stays as it is for
the results already stored.
"""

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from baselines.registry import register_strategy


class OnlineEWCOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    e_lambda: PositiveFloat = 1.0  # penalty strength
    gamma: float = Field(1.0, gt=0, le=1)  # decay of the accumulated Fisher estimate


@register_strategy(
    "ewc-online",
    options=OnlineEWCOptions,
    needs_boundaries="accumulates the Fisher information and moves its anchor at the end of each experience",
)
def build(setup, options: OnlineEWCOptions):
    from baselines.regularisers import OnlineEWCPlugin

    plugin = OnlineEWCPlugin(e_lambda=options.e_lambda, gamma=options.gamma, batch_size=setup.batch_size)
    return setup.strategy(setup.classifier(), plugins=[plugin])
