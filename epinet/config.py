"""EpiNet's hyperparameters, importable without torch.

Kept apart from the model so that validating a configuration (the harness checks every
run's options before any training) answers without paying torch's import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator


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
