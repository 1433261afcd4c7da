"""Learning without Forgetting (LwF; Li and Hoiem, ECCV 2016 / TPAMI 2017) through Avalanche's
``LwFPlugin``.

The model at the end of the previous experience is the teacher; each step adds
``alpha * KL(softmax(z_old / T) || softmax(z / T))`` over the classes seen before, z the
model's logits and z_old the teacher's on the same minibatch (``batchmean``). That is the
paper's loss: its L_old is the cross-entropy between the temperature-scaled recorded and
current outputs (T = 2, weight lambda_o = 1), which differs from this KL by the teacher's
entropy, a constant; the paper's ``y^(1/T)`` renormalised is ``softmax(z / T)``; recording the
outputs before training (paper, Mammoth) or recomputing them with the frozen teacher
(Avalanche) gives the same targets without data augmentation, as here.

On the harness (``baselines.regularisers.HarnessLwFPlugin``): class- and domain-incremental
runs distill all earlier classes in one softmax over them (Avalanche's single-head case,
which is also Mammoth's class-incremental ``lwf``); task-incremental runs distill each earlier
task's classes as its own head, summed, as the paper sums one loss per old task and
Avalanche does for multi-head models (its single-head code would read only task 0, through
logits the harness has masked to -inf). The distillation reads the unmasked logits; the fast
tensor data path is untouched.

Left out, as for every strategy of the harness: the paper's warm-up (training the new head
alone before training everything) and its weight decay; Mammoth's class-incremental ``lwf``
also restricts the cross-entropy to the classes seen so far, while every strategy here uses
all of them. Options: ``alpha`` (distillation weight) and ``temperature``.
"""

from pydantic import BaseModel, ConfigDict, NonNegativeFloat, PositiveFloat

from baselines.registry import register_strategy


class LwFOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: NonNegativeFloat = 1.0  # weight of the distillation term
    temperature: PositiveFloat = 2.0  # softmax temperature of the distillation


@register_strategy(
    "lwf", options=LwFOptions, needs_boundaries="distils from the model as it was at the end of the previous experience"
)
def build(setup, options: LwFOptions):
    from baselines.regularisers import HarnessLwFPlugin

    plugin = HarnessLwFPlugin(alpha=options.alpha, temperature=options.temperature, class_masks=setup.class_masks)
    return setup.strategy(setup.classifier(), plugins=[plugin])
