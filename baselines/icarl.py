"""iCaRL: incremental classifier and representation learning (Rebuffi et al., CVPR 2017).

As in the paper and Mammoth ``models/icarl.py`` (where the DER paper's iCaRL numbers come from):

* training set of an experience = its data joined with the exemplars (Mammoth ``icarl_replay``),
  shuffled together; no separate replay minibatch (``replay_batch_size`` is unused);
* loss: binary cross-entropy with logits over the classes seen so far (Mammoth's ``[:, :ac]``):
  one-hot targets for the current experience's classes, the previous model's sigmoid outputs
  for the classes of earlier experiences (distillation), mean over samples and classes;
  ``wd_reg`` adds Mammoth's L2 penalty (DER paper, MNIST: 0);
* memory: ``memory // classes seen`` exemplars per class (floor, never over budget); old classes
  keep their first ones in herding order, new ones are chosen by herding (paper's Algorithm 4,
  Mammoth's rule: the sample that brings the running mean closest to the class mean);
* evaluation: nearest mean of exemplars; output = minus the squared distance of the normalised
  feature to each normalised class mean (Mammoth's ``forward``), so argmax is the NME class.

Features are L2-normalised for herding and class means, as in the paper and current Mammoth
(``normalise_features: true``, the default); the 2020 Mammoth the DER paper ran used raw
features for both (``normalise_features: false``, what der2020.yaml reproduces). Mammoth's
class means also average horizontally flipped images, a CIFAR augmentation not applied to digits.
Mammoth has no softmax temperature for iCaRL. Each class must belong to one experience
(class- or task-incremental streams, Mammoth's COMPATIBILITY); a repeated class is an error.

Avalanche's ``ICaRL`` strategy is not used: it needs the benchmark's ``n_classes_per_exp`` and
``classes_order`` (not on generic scenarios), keeps ``ceil(memory / classes)`` per class (over
budget), applies BCE to unseen classes too, uses another herding variant, flips images for the
means and reads data through per-sample Avalanche datasets. The pieces are written here instead.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, NonNegativeFloat

from baselines.registry import register_strategy
from baselines.replay import planned_bytes


class ICaRLOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wd_reg: NonNegativeFloat = 0.0  # Mammoth's L2 penalty on all parameters, added to the loss
    normalise_features: bool = True  # L2-normalised features for herding and class means (false: raw, Mammoth 2020)


def memory_bytes(strategy) -> int:
    return next(p for p in strategy.plugins if hasattr(p, "exemplars")).nbytes(strategy.model)


def herding(features, m: int):
    """Indices of ``m`` rows of ``features`` [n, d] chosen one by one so that the mean of those
    chosen so far stays closest to the mean of all (iCaRL's Algorithm 4)."""
    import torch

    mean = features.mean(0)
    running = torch.zeros_like(mean)
    taken = torch.zeros(len(features), dtype=torch.bool)
    chosen = []
    for k in range(1, min(m, len(features)) + 1):
        cost = (mean - (running + features) / k).norm(dim=1).masked_fill(taken, float("inf"))
        i = int(cost.argmin())
        chosen.append(i)
        taken[i] = True
        running += features[i]
    return torch.tensor(chosen, dtype=torch.long)


@register_strategy(
    "icarl",
    options=ICaRLOptions,
    memory_bytes=memory_bytes,
    planned_bytes=planned_bytes,
    needs_boundaries="selects exemplars by herding and keeps the previous model at the end of each experience",
)
def build(setup, options: ICaRLOptions):
    import copy

    import torch
    import torch.nn.functional as F
    from avalanche.core import SupervisedPlugin
    from torch import nn

    from baselines.loaders import TensorBatches

    class NMEClassifier(nn.Sequential):
        """The classifier (``[0]`` backbone, ``[1]`` head) in training; in evaluation, minus the
        squared distance to each class mean (classes without exemplars rank last)."""

        def __init__(self, *modules):
            super().__init__(*modules)
            self.register_buffer("class_means", None)  # [n_classes, d] (unit rows when normalised)
            self.register_buffer("has_mean", None)  # [n_classes] bool

        def features(self, x):
            return F.normalize(self[0](x), dim=1) if options.normalise_features else self[0](x)

        def forward(self, x):
            if self.training or self.class_means is None:
                return super().forward(x)
            distance = (self.features(x)[:, None, :] - self.class_means[None]).pow(2).sum(2)
            return (-distance).masked_fill(~self.has_mean, torch.finfo(distance.dtype).min)

    class ICaRLPlugin(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.exemplars: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # class -> (x, t), herding order
            self.old_classes = torch.zeros(setup.n_classes, dtype=torch.bool)
            self.new_classes = torch.zeros(setup.n_classes, dtype=torch.bool)
            self.old_net = None

        def memory(self):
            classes = sorted(self.exemplars)
            x = torch.cat([self.exemplars[c][0] for c in classes])
            y = torch.cat([torch.full((len(self.exemplars[c][0]),), c, dtype=torch.long) for c in classes])
            return x, y, torch.cat([self.exemplars[c][1] for c in classes])

        def before_training_exp(self, strategy, **kwargs):
            x, y, t = strategy.experience.tensors
            self.new_classes = torch.zeros(setup.n_classes, dtype=torch.bool)
            self.new_classes[y.unique()] = True
            repeated = (self.new_classes & self.old_classes).nonzero().squeeze(1).tolist()
            if repeated:
                raise ValueError(
                    f"icarl needs every class in one experience only (class- or task-incremental streams); "
                    f"experience {strategy.clock.train_exp_counter} brings back classes {repeated}"
                )
            strategy.model.class_means = None  # stale once training starts: the head answers until rebuilt
            if self.exemplars:  # the exemplars join the experience's data, shuffled together
                data = [torch.cat(pair) for pair in zip((x, y, t), self.memory())]
                strategy.dataloader = TensorBatches(data, strategy.train_mb_size, shuffle=True)

        def before_backward(self, strategy, **kwargs):
            seen = (self.old_classes | self.new_classes).to(strategy.device)
            targets = F.one_hot(strategy.mb_y, setup.n_classes).float()
            if self.old_net is not None:
                with torch.no_grad():
                    old = torch.sigmoid(self.old_net(strategy.mb_x))
                targets = torch.where(self.old_classes.to(strategy.device), old, targets)
            logits = strategy.mb_raw_output  # unmasked: BCE on -inf task-masked logits is undefined
            strategy.loss = F.binary_cross_entropy_with_logits(logits[:, seen], targets[:, seen])
            if options.wd_reg:
                l2 = sum(p.pow(2).sum() for p in strategy.model.parameters())
                strategy.loss = strategy.loss + options.wd_reg * l2

        @torch.no_grad()
        def after_training_exp(self, strategy, **kwargs):
            model = strategy.model
            model.eval()
            self.old_net = copy.deepcopy(nn.Sequential(model[0], model[1])).requires_grad_(False)
            self.old_classes |= self.new_classes
            per_class = setup.memory // int(self.old_classes.sum())
            for c, (x, t) in self.exemplars.items():
                self.exemplars[c] = (x[:per_class], t[:per_class])
            x, y, t = strategy.experience.tensors
            for c in self.new_classes.nonzero().squeeze(1).tolist():
                xc, tc = x[y == c], t[y == c]
                batches = xc.split(strategy.eval_mb_size)
                feats = torch.cat([model.features(b.to(strategy.device)).cpu() for b in batches])
                chosen = herding(feats, per_class)
                self.exemplars[c] = (xc[chosen], tc[chosen])
            self.exemplars = {c: pair for c, pair in self.exemplars.items() if len(pair[0])}  # memory < classes
            means = torch.zeros(setup.n_classes, model[1].in_features, device=strategy.device)
            for c, (xc, _) in self.exemplars.items():
                mean = model.features(xc.to(strategy.device)).mean(0)
                means[c] = F.normalize(mean, dim=0) if options.normalise_features else mean
            model.has_mean = torch.zeros(setup.n_classes, dtype=torch.bool, device=strategy.device)
            model.has_mean[list(self.exemplars)] = True
            model.class_means = means
            model.train()

        def nbytes(self, model) -> int:
            """Exemplars (x, y, t), the previous model's parameters and the class means."""
            if not self.exemplars:
                return 0
            total = sum(v.element_size() * v.numel() for v in self.memory())
            total += sum(p.element_size() * p.numel() for p in self.old_net.parameters())
            return total + model.class_means.element_size() * model.class_means.numel()

    model = NMEClassifier(*setup.classifier())
    return setup.strategy(model, plugins=[ICaRLPlugin()])
