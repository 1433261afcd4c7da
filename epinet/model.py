"""EpiNet: encoder + episodic memory + recall + mixture-of-experts decoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator
from torch import Tensor, nn

from epinet.backbones import make_backbone
from epinet.decoder import MixtureOfExpertsDecoder
from epinet.memory import EpisodicMemory
from epinet.recall import RecallEngine
from epinet.salience import Clock, make_clock

MaskLogits = Callable[[Tensor, Tensor], Tensor]


class EpiNetConfig(BaseModel):
    """Hyperparameters of EpiNet. Immutable; unknown fields are rejected.

    alpha is the salience decay rate per clock unit (per training iteration
    for the logical clock, per second for the wall clock); ``alpha = 0``
    turns decay off. beta weighs the replay term; ``beta = 0`` turns replay
    off. ``salience="random"`` draws r0 ~ U(0, 1) instead of using the
    per-sample loss, which makes admission reservoir-like (an ablation).
    ``recall=False`` feeds r = 0 to the decoder (an ablation).
    ``reencode_every`` is in training iterations, 0 = off.
    ``replay_batch_size=None`` replays as many memories as the training batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    latent_dim: PositiveInt = 128
    capacity: PositiveInt = 500
    top_k: PositiveInt = 5
    alpha: float = Field(1e-3, ge=0, allow_inf_nan=False)
    beta: float = Field(0.5, ge=0, allow_inf_nan=False)
    num_experts: PositiveInt = 4
    hidden_dim: PositiveInt = 256
    recall: bool = True
    salience: Literal["loss", "random"] = "loss"
    class_balanced: bool = False
    reencode_every_experience: bool = True
    reencode_every: int = Field(0, ge=0)
    clock: Literal["logical", "wall"] = "logical"
    replay_batch_size: PositiveInt | None = None

    @model_validator(mode="after")
    def _top_k_fits_in_memory(self) -> EpiNetConfig:
        if self.top_k > self.capacity:
            raise ValueError(f"top_k (k={self.top_k}) must not exceed capacity ({self.capacity})")
        return self


class EpiNetModel(nn.Module):
    """The assembled EpiNet (notebook cell 7, made to run).

    ``forward(x)`` encodes, recalls from memory (in train and eval mode
    alike) and decodes to logits. Training-loop hooks, used by
    ``epinet.plugin`` but usable from any loop: :meth:`replay_term`,
    :meth:`memorize`, :meth:`tick`, :meth:`reencode_memory`.
    Memory contents and the clock are buffers, so ``state_dict`` captures
    everything needed to predict identically.
    """

    last_latent: Tensor | None

    def __init__(
        self,
        config: EpiNetConfig,
        backbone_name: str,
        num_classes: int,
        input_shape: Sequence[int] = (1, 28, 28),
    ) -> None:
        super().__init__()
        self.config = config
        backbone, feature_dim = make_backbone(backbone_name)
        self.encoder = nn.Sequential(backbone, nn.Linear(feature_dim, config.latent_dim))
        self.memory = EpisodicMemory(config.capacity, input_shape, config.latent_dim, config.class_balanced)
        self.recall_engine = RecallEngine(config.top_k)
        self.decoder = MixtureOfExpertsDecoder(config.latent_dim, config.hidden_dim, num_classes, config.num_experts)
        self.clock: Clock = make_clock(config.clock)
        self.last_latent = None

    @property
    def iterations(self) -> int:
        """Training iterations ticked so far."""
        return int(self.clock.ticks)

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
        self.last_latent = z.detach()
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
