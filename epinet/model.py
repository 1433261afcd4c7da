"""EpiNet: encoder + episodic memory + recall + mixture-of-experts decoder, and its training step."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from epinet.backbones import make_backbone
from epinet.config import EpiNetConfig
from epinet.decoder import MixtureOfExpertsDecoder
from epinet.memory import EpisodicMemory
from epinet.recall import RecallEngine
from epinet.salience import Clock, make_clock

MaskLogits = Callable[[Tensor, Tensor], Tensor]


class EpiNetModel(nn.Module):
    """The assembled EpiNet (notebook cell 7, made to run).

    ``forward(x)`` encodes, recalls from memory (in train and eval mode alike) and decodes
    to logits; it has no side effects. One training iteration is :meth:`observe`, readable
    top to bottom. A loop that owns the forward pass and the optimizer (Avalanche's, through
    ``epinet.plugin``) calls the same parts in the same order: :meth:`forward_with_latent`,
    :meth:`training_loss`, its own backward and optimizer step, :meth:`store`; and
    :meth:`end_experience` after each experience.

    Memory contents and the clock are buffers, so ``state_dict`` captures everything needed
    to predict identically.
    """

    def __init__(
        self,
        config: EpiNetConfig,
        backbone_name: str,
        num_classes: int,
        input_shape: Sequence[int] = (1, 28, 28),
        mlp_width: int = 400,
    ) -> None:
        super().__init__()
        self.config = config
        backbone, feature_dim = make_backbone(backbone_name, mlp_width)
        self.encoder = nn.Sequential(backbone, nn.Linear(feature_dim, config.latent_dim))
        self.memory = EpisodicMemory(config.capacity, input_shape, config.latent_dim, config.class_balanced)
        self.recall_engine = RecallEngine(config.top_k)
        self.decoder = MixtureOfExpertsDecoder(config.latent_dim, config.hidden_dim, num_classes, config.num_experts)
        self.clock: Clock = make_clock(config.clock)

    @property
    def iterations(self) -> int:
        """Training iterations ticked so far."""
        return int(self.clock.ticks)

    # ------------------------------------------------------------------ one training iteration

    def observe(
        self, x: Tensor, y: Tensor, t: Tensor | int, optimizer: Optimizer, mask_logits: MaskLogits | None = None
    ) -> Tensor:
        """One training iteration on the batch (x, y, t); returns the loss it backpropagated.

        ``mask_logits(logits, task_labels)``, if given, masks the logits of the batch and of
        the replayed memories (task-incremental learning).
        """
        # What the iteration computes: loss = loss_main + beta * loss_replay.
        optimizer.zero_grad()
        logits, z = self.forward_with_latent(x)
        if mask_logits is not None:
            logits = mask_logits(logits, t)
        loss = self.training_loss(F.cross_entropy(logits, y), len(x), mask_logits)
        loss.backward()
        optimizer.step()
        # What it stores afterwards: the batch in memory, one clock tick, periodic re-encoding.
        self.store(x, z, logits, y, t, mask_logits)
        return loss.detach()

    def forward_with_latent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits, z): the forward pass, and the batch's latent (detached) that memory stores."""
        z = self.encode(x)
        return self.decoder(z, self.recall(z)), z.detach()

    def training_loss(
        self,
        main_loss: Tensor,
        batch_size: int,
        mask_logits: MaskLogits | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The loss to backpropagate: ``main_loss + beta * loss_replay`` (or ``main_loss``
        alone when there is nothing to replay). ``batch_size`` is the training batch's, the
        number of memories replayed unless ``config.replay_batch_size`` says otherwise."""
        replay = self.replay_term(self.config.replay_batch_size or batch_size, mask_logits, generator)
        return main_loss if replay is None else main_loss + replay

    def store(
        self,
        x: Tensor,
        z: Tensor,
        logits: Tensor,
        y: Tensor,
        t: Tensor | int,
        mask_logits: MaskLogits | None = None,
    ) -> None:
        """After the optimizer step: offer the batch to memory with its per-sample loss as
        salience, tick the clock, and re-encode memory every ``config.reencode_every`` ticks.

        ``logits`` are the batch's training logits; ``mask_logits`` is applied to them again,
        so it must be idempotent (they may already be masked).
        """
        logits = logits.detach()
        if mask_logits is not None:
            logits = mask_logits(logits, t)
        self.memorize(x, z, F.cross_entropy(logits, y, reduction="none"), y, t)
        self.tick()
        every = self.config.reencode_every
        if every and self.iterations % every == 0:
            self.reencode_memory()

    def end_experience(self) -> None:
        """After training on an experience: refresh stored latents if so configured."""
        if self.config.reencode_every_experience:
            self.reencode_memory()

    # ------------------------------------------------------------------ the parts

    def encode(self, x: Tensor) -> Tensor:
        """Latent z, shape [B, latent_dim]."""
        return self.encoder(x)

    def recall(self, z: Tensor) -> Tensor:
        """Recall embedding r for latents z (zeros when recall is ablated)."""
        if not self.config.recall:
            return torch.zeros_like(z)
        # r is not differentiable in z (top-k indices select stored buffers),
        # so no graph is built for it.
        with torch.no_grad():
            return self.recall_engine.recall(z, self.memory, self.clock.now(), self.config.alpha)

    def forward(self, x: Tensor) -> Tensor:
        z = self.encode(x)
        return self.decoder(z, self.recall(z))

    def memorize(self, x: Tensor, z: Tensor, per_sample_loss: Tensor, y: Tensor, t: Tensor | int) -> None:
        """Offer a batch to memory, stamped with the clock's current time.

        r0 is the per-sample loss (a surprise signal), or U(0, 1) from the
        global torch RNG when ``config.salience == "random"``.
        """
        if self.config.salience == "random":
            r0 = torch.rand(x.shape[0]).to(per_sample_loss.device)
        else:
            r0 = per_sample_loss.detach()
        self.memory.admit(x, z, r0, y, t, self.clock.now(), self.config.alpha)

    def replay_term(
        self,
        batch_size: int,
        mask_logits: MaskLogits | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor | None:
        """``beta * loss_replay`` from the notebook's ``loss = loss_main + beta * loss_replay``.

        loss_replay is the cross-entropy on ``batch_size`` memories drawn
        uniformly without replacement. ``mask_logits(logits, task_labels)``,
        if given, is applied first (task-incremental masking). Returns None
        when there is nothing to replay (empty memory or beta = 0), which
        also saves the extra forward pass.
        """
        if len(self.memory) == 0 or self.config.beta == 0:
            return None
        x, y, t = self.memory.sample(batch_size, generator)
        logits = self(x)
        if mask_logits is not None:
            logits = mask_logits(logits, t)
        return self.config.beta * F.cross_entropy(logits, y)

    def tick(self) -> None:
        """Advance the clock by one training iteration."""
        self.clock.tick()

    def reencode_memory(self, batch_size: int = 512) -> None:
        """Refresh stored latents and keys with the current encoder."""
        self.memory.reencode(self.encoder, batch_size)
