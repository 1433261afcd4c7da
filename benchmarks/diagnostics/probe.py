"""What EpiNet's memory, losses and recall look like during a harness run, read from outside.

:class:`DiagnosticsPlugin` is an Avalanche plugin placed after ``EpiNetPlugin`` (the harness
adds its plugins after the strategy's own), so in each callback it sees the step EpiNet has just
taken. It records

* every ``every`` training iterations and at the last iteration of each experience, after the
  batch was offered to memory: the memory's composition by class and by experience of origin,
  quantiles of the decayed salience and of the age of what it holds, the loss split into
  ``loss_main`` and the replay term, and what recall feeds the decoder for the training batch
  (norms, cosine to the query, label agreement);
* at the end of each experience, on validation probes of every experience seen so far: accuracy
  and the recall statistics at each stage of ``end_experience`` (``trained``: after the last
  epoch; ``before_reencode`` / ``after_reencode``: around the re-encoding of stored latents;
  ``ended``: what the harness then evaluates), the shift of the recall embedding r that
  re-encoding causes for the same inputs, and the shift of the stored latents themselves.

Nothing here draws from a random stream, changes a weight or writes a buffer, so a diagnosed
run trains exactly like the same run without the plugin (tests/benchmarks/test_diagnostics.py
checks the accuracy matrices are equal). Two points inside ``EpiNetModel`` have no Avalanche
callback: the re-encoding within ``end_experience`` and the replay minibatch within the loss.
There the plugin wraps the instance's ``reencode_memory`` and ``replay_loss`` (the class and
``epinet/`` are untouched): the wrappers measure or note the slots, then call the original.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import Tensor

from epinet.model import EpiNetModel

# Quantiles of salience (and of age) kept per record: the bands of the salience figure.
QUANTILES = {"min": 0.0, "q05": 0.05, "q25": 0.25, "q50": 0.5, "q75": 0.75, "q95": 0.95, "max": 1.0}
STAGES = ("trained", "before_reencode", "after_reencode", "ended")
# Named here so that a run without re-encoding still writes the table's header.
REENCODING_COLUMNS = (
    "experience",
    "iteration",
    "memory_size",
    "stored_z_cos",
    "stored_z_norm_before",
    "stored_z_norm_after",
)

Probe = tuple[Tensor, Tensor, Tensor]  # validation (x, y, t) of one experience


def _quantiles(values: Tensor, prefix: str) -> dict[str, float]:
    if values.numel() == 0:
        return {f"{prefix}_{name}": float("nan") for name in QUANTILES}
    q = torch.quantile(values.double(), torch.tensor(list(QUANTILES.values()), dtype=torch.float64))
    return {f"{prefix}_{name}": float(v) for name, v in zip(QUANTILES, q)}


def recall_view(model: EpiNetModel, x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """Per sample: the latent z, the r that recall feeds the decoder (zeros with ``recall``
    off), and ``agreement``, the recall weight on memories of the sample's own class (what the
    retrieved episodes say; 0 when memory is empty, NaN when memory keeps no keys to recall
    from, as with ``recall`` and label votes off)."""
    z = model.encode(x)
    if not model.memory.store_keys:
        return {"z": z, "r": torch.zeros_like(z), "agreement": torch.full_like(y, float("nan"), dtype=z.dtype)}
    r, votes = model.recall_with_votes(z, with_votes=True)
    r = torch.zeros_like(z) if r is None else r  # the decoder reads no r: none is fed
    return {"z": z, "r": r, "agreement": votes.gather(1, y[:, None]).squeeze(1)}


def _mean_cosine(a: Tensor, b: Tensor) -> float:
    """Mean cosine over the rows where both vectors are nonzero; NaN where there are none (r is
    all zeros with ``recall`` off, and a cosine with a zero vector means nothing)."""
    nonzero = (a.norm(dim=1) > 0) & (b.norm(dim=1) > 0)
    return float(F.cosine_similarity(a[nonzero], b[nonzero], dim=1).mean()) if nonzero.any() else float("nan")


def _recall_summary(view: dict[str, Tensor], prefix: str = "") -> dict[str, float]:
    z, r = view["z"], view["r"]
    return {
        f"{prefix}r_norm": float(r.norm(dim=1).mean()),
        f"{prefix}z_norm": float(z.norm(dim=1).mean()),
        f"{prefix}r_z_cos": _mean_cosine(r, z),
        f"{prefix}recall_agreement": float(view["agreement"].mean()),
    }


def _last_iteration_of_experience(strategy) -> bool:
    """Whether the iteration under way is the experience's last (read before Avalanche's clock,
    the last plugin, counts it): recorded whatever ``every`` says, so that each experience ends
    with a record, the final one included."""
    clock = strategy.clock
    return (
        clock.train_exp_epochs == strategy.train_epochs - 1
        and clock.train_epoch_iterations == len(strategy.dataloader) - 1
    )


class DiagnosticsPlugin(SupervisedPlugin):
    """Records EpiNet's internals into lists of dicts (one per row of the tables written by
    ``benchmarks.diagnostics.run``): ``records``, ``composition``, ``ends``, ``reencodings``.

    ``probes[i]`` are validation samples of experience i; ``every`` is the recording period in
    training iterations; probes are evaluated ``batch_size`` at a time.
    """

    def __init__(self, probes: Sequence[Probe], every: int, batch_size: int = 1000) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be at least 1 (got {every})")
        self.probes, self.every, self.batch_size = list(probes), every, batch_size
        self.records: list[dict[str, Any]] = []
        self.composition: list[dict[str, Any]] = []
        self.ends: list[dict[str, Any]] = []
        self.reencodings: list[dict[str, Any]] = []
        self._model: EpiNetModel | None = None
        self._strategy: Any = None
        self._pending: dict[str, Any] | None = None
        self._replay_slots: Tensor | None = None
        self._epochs_done = 0
        self._ending = False  # between the last epoch and the end of after_training_exp
        self._before: dict[int, tuple[Tensor, Tensor]] = {}  # probe -> (r, prediction) before re-encoding

    # ------------------------------------------------------------------ wiring

    def before_training(self, strategy, **kwargs):
        model = strategy.model
        if not isinstance(model, EpiNetModel):
            raise TypeError(f"diagnostics need an EpiNetModel, got {type(model).__name__}")
        self._strategy = strategy
        if self._model is not model:
            self._model = model
            self._wrap(model)

    def _wrap(self, model: EpiNetModel) -> None:
        reencode, replay_loss = model.reencode_memory, model.replay_loss

        def reencode_observed(*args, **kwargs):
            if not self._ending:  # a periodic re-encoding (reencode_every): not measured
                return reencode(*args, **kwargs)
            self._measure("before_reencode")
            if not model.memory.store_keys:  # no stored latents to move
                result = reencode(*args, **kwargs)
                self._measure("after_reencode")
                return result
            n = len(model.memory)
            stale = model.memory.z[:n].clone()
            result = reencode(*args, **kwargs)
            self._note_reencoding(stale, model.memory.z[:n])
            self._measure("after_reencode")
            return result

        def replay_loss_observed(slots, *args, **kwargs):
            self._replay_slots = slots
            return replay_loss(slots, *args, **kwargs)

        # Instance attributes shadow the methods for this model only; the class is unchanged.
        model.reencode_memory = reencode_observed
        model.replay_loss = replay_loss_observed

    def _mask(self) -> Callable[[Tensor, Tensor], Tensor] | None:
        return getattr(self._strategy, "mask_logits", None)

    # ------------------------------------------------------------------ every `every` iterations

    def before_training_iteration(self, strategy, **kwargs):
        self._replay_slots = None

    @torch.no_grad()
    def before_backward(self, strategy, **kwargs):
        # EpiNetPlugin has just set strategy.loss = loss_main + replay term, weights untouched.
        model = self._model
        if (model.iterations + 1) % self.every and not _last_iteration_of_experience(strategy):
            return
        total = float(strategy.loss)
        main = float(model.current_batch_loss(strategy.mb_output, strategy.mb_y))
        replay = total - main
        self._pending = {
            "loss_total": total,
            "loss_main": main,
            "loss_replay": replay,
            "loss_replay_ce": self._replay_cross_entropy(replay),
            "replay_share": replay / total if total else float("nan"),
            **_recall_summary(recall_view(model, strategy.mb_x, strategy.mb_y), prefix="batch_"),
        }

    def _replay_cross_entropy(self, replay: float) -> float:
        """beta * cross-entropy part of the replay term (the rest is gamma * the stored-response
        MSE): ``memory_loss`` recomputed on the same slots with ``response_weight`` 0, so the
        split follows the model's own definition. With ``reconsolidate``, the replay already
        re-stamped those memories, so the recomputed part can differ slightly."""
        model = self._model
        if self._replay_slots is None:
            return 0.0
        if not model.config.response_weight:
            return replay
        config = model.config
        model.config = config.model_copy(update={"response_weight": 0.0, "reconsolidate": "none"})
        try:
            return float(model.memory_loss(self._replay_slots, self._mask()))
        finally:
            model.config = config

    @torch.no_grad()
    def after_training_iteration(self, strategy, **kwargs):
        # After EpiNetPlugin stored the batch and ticked the clock.
        if self._pending is None:
            return
        model, memory = self._model, self._model.memory
        n, now = len(memory), model.clock.now()
        iteration, experience = model.iterations, strategy.experience.current_experience
        for by, values in (("class", memory.y[:n]), ("origin", memory.e[:n])):
            for group, count in enumerate(torch.bincount(values).tolist()):
                if count:
                    self.composition.append(
                        {"iteration": iteration, "experience": experience, "by": by, "group": group, "count": count}
                    )
        self.records.append(
            {
                "iteration": iteration,
                "experience": experience,
                "memory_size": n,
                **self._pending,
                **_quantiles(memory.salience(now, model.config.alpha), "salience"),
                **_quantiles(now - memory.tau[:n], "age"),
            }
        )
        self._pending = None

    # ------------------------------------------------------------------ at each experience end

    def before_training_exp(self, strategy, **kwargs):
        self._epochs_done = 0

    def after_training_epoch(self, strategy, **kwargs):
        self._epochs_done += 1
        if self._epochs_done == strategy.train_epochs:  # end_experience comes next
            self._measure("trained")
            self._ending = True

    def after_training_exp(self, strategy, **kwargs):
        # After EpiNetPlugin's end_experience (consolidation, re-encoding): what evaluation sees.
        self._measure("ended")
        self._ending = False
        self._before.clear()

    def _note_reencoding(self, stale: Tensor, fresh: Tensor) -> None:
        values = (
            self._strategy.experience.current_experience,
            self._model.iterations,
            len(stale),
            _mean_cosine(stale, fresh),
            # Means of norms, not a mean of ratios: latents stored by the untrained encoder
            # of the first iterations have tiny norms and would dominate a mean of ratios.
            float(stale.norm(dim=1).mean()),
            float(fresh.norm(dim=1).mean()),
        )
        self.reencodings.append(dict(zip(REENCODING_COLUMNS, values, strict=True)))

    @torch.no_grad()
    def _measure(self, stage: str) -> None:
        """Accuracy and recall statistics on the probes of every experience seen so far, in
        eval mode as the harness evaluates; the model's mode and the RNG state are restored."""
        model, strategy = self._model, self._strategy
        experience = strategy.experience.current_experience
        was_training, rng = model.training, torch.get_rng_state()
        model.eval()
        try:
            for i, probe in enumerate(self.probes[: experience + 1]):
                view, prediction = self._evaluate(probe)
                row = {"experience": experience, "iteration": model.iterations, "stage": stage}
                row.update(probe_experience=i, probe_size=len(prediction))
                row["accuracy"] = float((prediction == probe[1].to(prediction.device)).float().mean())
                row.update(_recall_summary(view))
                if stage == "before_reencode":
                    self._before[i] = (view["r"], prediction)
                if stage == "after_reencode" and i in self._before:
                    r_before, prediction_before = self._before[i]
                    moved, before_norm = (view["r"] - r_before).norm(dim=1), r_before.norm(dim=1)
                    row["r_shift_cos"] = _mean_cosine(view["r"], r_before)
                    row["r_shift_rel"] = float((moved[before_norm > 0] / before_norm[before_norm > 0]).mean())
                    row["prediction_flips"] = float((prediction != prediction_before).float().mean())
                self.ends.append(row)
        finally:
            model.train(was_training)
            torch.set_rng_state(rng)

    def _evaluate(self, probe: Probe) -> tuple[dict[str, Tensor], Tensor]:
        """(recall view, predictions) of a probe, ``batch_size`` samples at a time."""
        model, mask, device = self._model, self._mask(), self._strategy.device
        views, predictions = [], []
        for x, y, t in zip(*(part.split(self.batch_size) for part in probe)):
            x, y, t = x.to(device), y.to(device), t.to(device)
            logits = model(x)
            predictions.append((logits if mask is None else mask(logits, t)).argmax(1))
            views.append(recall_view(model, x, y))
        view = {key: torch.cat([v[key] for v in views]) for key in views[0]}
        return view, torch.cat(predictions)
