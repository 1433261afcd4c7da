"""(b) EpiNet's and replay's training steps outside Avalanche: the methods' own compute.

EpiNet's step is the model's own, ``EpiNetModel.observe`` (one forward, recall included, over
the batch followed by 128 replayed memories; the losses; backward; Adam; then admission of the
batch and the clock tick). Its phase breakdown calls the same parts observe calls, in the same
order, timing each. Replay's step, for comparison: one forward of 256 samples (128 current +
128 from a buffer), backward, Adam.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.perf.setups import filled_model, strategy_setup
from benchmarks.perf.timing import Row, clock, interleaved_rounds, time_calls

EPINET_PHASES = ("forward", "loss", "backward", "optimizer", "store")
REPLAY_PHASES = ("forward", "backward", "optimizer")
CPU_CLOCK = clock("cpu")  # the phases' default timer; a GPU's is passed in (it waits for queued work)


@dataclass(frozen=True)
class BareSteps:
    key: ClassVar[str] = "bare_steps"

    steps: int
    epinet_ms_per_step: float  # EpiNetModel.observe
    replay_ms_per_step: float
    epinet_phase_ms: dict[str, float]  # EPINET_PHASES
    replay_phase_ms: dict[str, float]  # REPLAY_PHASES
    components_ms: dict[str, float]  # forward + backward of EpiNet's parts and replay's classifier
    parameters: dict[str, int]
    forward_macs_per_sample: dict[str, int]

    @property
    def ratio_epinet_replay(self) -> float:
        return self.epinet_ms_per_step / self.replay_ms_per_step

    def rows(self) -> list[Row]:
        e, r, k, macs = self.epinet_phase_ms, self.replay_phase_ms, self.components_ms, self.forward_macs_per_sample
        return [
            Row(
                "(b) same, bare training steps outside Avalanche (EpiNetModel.observe / a replay step)",
                f"{self.epinet_ms_per_step:.2f} / {self.replay_ms_per_step:.2f} ms per step"
                f" = {self.ratio_epinet_replay:.2f}x",
            ),
            Row(
                "(b) EpiNet step by phase: fwd (256 samples) + losses + backward + Adam + store (admission, tick)",
                " + ".join(f"{e[p]:.2f}" for p in EPINET_PHASES) + " ms",
            ),
            Row(
                "(b) replay step by phase: fwd (256 samples) + backward + Adam",
                " + ".join(f"{r[p]:.2f}" for p in REPLAY_PHASES) + " ms",
            ),
            Row(
                "(b) forward + backward per step: EpiNet encoder + decoder (+ recall, no grad), each on 256;"
                " replay's whole classifier on 256",
                f"{k['epinet_encoder_256']:.2f} + {k['epinet_decoder_256']:.2f}"
                f" (+ {k['epinet_recall_256']:.2f}) ms vs {k['replay_classifier_256']:.2f} ms",
            ),
            Row(
                "(b) forward multiply-adds per sample (dense layers + recall), EpiNet / replay",
                f"{macs['epinet'] / 1e3:,.0f}k / {macs['replay'] / 1e3:,.0f}k = {macs['epinet'] / macs['replay']:.2f}x",
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "ms_per_step": {"epinet": self.epinet_ms_per_step, "replay": self.replay_ms_per_step},
            "phase_ms_per_step": {"epinet": self.epinet_phase_ms, "replay": self.replay_phase_ms},
            "ratio_epinet_replay": self.ratio_epinet_replay,
            "components_ms": self.components_ms,
            "parameters": self.parameters,
            "forward_macs_per_sample": self.forward_macs_per_sample,
        }


def epinet_phases(model, optimizer, xb, yb, tb, now=CPU_CLOCK) -> dict[str, float]:
    """One EpiNet training step through observe's parts, in observe's order, each timed."""
    t0 = now()
    optimizer.zero_grad()
    b = len(yb)
    slots = model.replay_slots(b)
    xs, _ = model.with_replayed(xb, tb, slots)
    logits, z = model.forward_with_latent(xs)
    t1 = now()
    loss = model.training_loss(logits[:b], yb, slots, logits[b:], logits[b:])
    t2 = now()
    loss.backward()
    t3 = now()
    optimizer.step()
    t4 = now()
    model.store(xb, z[:b], logits[:b], yb, tb)
    t5 = now()
    return dict(zip(EPINET_PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)))


def replay_phases(classifier, optimizer, xb, yb, now=CPU_CLOCK) -> dict[str, float]:
    """One step of a classifier on an already concatenated batch (current + buffer), timed by phase."""
    t0 = now()
    optimizer.zero_grad()
    loss = F.cross_entropy(classifier(xb), yb)
    t1 = now()
    loss.backward()
    t2 = now()
    optimizer.step()
    t3 = now()
    return dict(zip(REPLAY_PHASES, (t1 - t0, t2 - t1, t3 - t2)))


def measure_bare_steps(bench, repeats: int, steps: int = 40, device: str = "cpu") -> BareSteps:
    setup = strategy_setup(bench, device=device)
    # On the device beforehand: the bare steps time the model's work, not the batches' transfer.
    x, y, t = (part.to(device) for part in bench.train_stream[1].tensors)
    b = setup.batch_size
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(len(y), (b,), generator=g) for _ in range(steps)]
    now = clock(device)

    torch.manual_seed(0)
    classifier = setup.classifier().to(device)
    c_opt = setup.make_optimizer(classifier)
    buffer = torch.randint(len(y), (setup.memory,), generator=g)
    model = filled_model(bench, device=device)
    e_opt = setup.make_optimizer(model)

    def observe() -> dict[str, float]:
        start = now()
        for idx in batches:
            model.observe(x[idx], y[idx], t[idx], e_opt)
        return {"total": now() - start}

    def epinet_by_phase() -> dict[str, float]:
        per_step = [epinet_phases(model, e_opt, x[idx], y[idx], t[idx], now) for idx in batches]
        return {p: sum(s[p] for s in per_step) for p in EPINET_PHASES}

    def replay_by_phase() -> dict[str, float]:
        per_step = []
        for idx in batches:
            mem = buffer[torch.randint(len(buffer), (b,))]
            joined_x, joined_y = torch.cat([x[idx], x[mem]]), torch.cat([y[idx], y[mem]])
            per_step.append(replay_phases(classifier, c_opt, joined_x, joined_y, now))
        return {p: sum(s[p] for s in per_step) for p in REPLAY_PHASES}

    sides = {"epinet": observe, "epinet_phases": epinet_by_phase, "replay": replay_by_phase}
    _, records = interleaved_rounds(sides, repeats)

    def median_ms(runs: list[dict[str, float]], key: str) -> float:
        return 1000 * statistics.median(r[key] for r in runs) / steps

    return BareSteps(
        steps=steps,
        epinet_ms_per_step=median_ms(records["epinet"], "total"),
        replay_ms_per_step=1000 * statistics.median(sum(r.values()) for r in records["replay"]) / steps,
        epinet_phase_ms={p: median_ms(records["epinet_phases"], p) for p in EPINET_PHASES},
        replay_phase_ms={p: median_ms(records["replay"], p) for p in REPLAY_PHASES},
        components_ms=components_ms(model, classifier, x[:b], 2 * b, max(20, 4 * repeats), device),
        parameters={"epinet": _count(model.parameters()), "replay": _count(classifier.parameters())},
        forward_macs_per_sample={
            # + recall's cosine matmul, where the decoder reads recall
            "epinet": _linear_macs(model) + model.config.recall * model.config.capacity * model.config.latent_dim,
            "replay": _linear_macs(classifier),
        },
    )


def components_ms(model, classifier, xb: torch.Tensor, replay_batch: int, calls: int, device="cpu") -> dict[str, float]:
    """Forward + backward of each of EpiNet's parts on one training step's worth of data (the
    batch and as many replayed samples, 256 rows, one pass each), in ms."""
    x2 = xb.repeat(2, 1, 1, 1)[:replay_batch]
    z = model.encode(x2).detach()
    with torch.no_grad():
        r = model.recall(z)

    def encoder():
        model.encode(x2).sum().backward()

    def decoder():
        model.decoder(z.requires_grad_(), r).sum().backward()

    def recall():
        with torch.no_grad():
            model.recall(z)

    def whole_classifier():
        classifier(x2).sum().backward()

    parts = {"encoder": encoder, "decoder": decoder, "recall": recall, "classifier": whole_classifier}
    median_ms = {name: 1000 * time_calls(fn, calls, device=device).median for name, fn in parts.items()}
    model.zero_grad(set_to_none=True)
    classifier.zero_grad(set_to_none=True)
    return {
        "epinet_encoder_256": median_ms["encoder"],
        "epinet_decoder_256": median_ms["decoder"],
        "epinet_recall_256": median_ms["recall"],
        "replay_classifier_256": median_ms["classifier"],
    }


def _count(parameters) -> int:
    return sum(p.numel() for p in parameters)


def _linear_macs(model: nn.Module) -> int:
    """Multiply-accumulates per sample of a model's dense layers (weights of dim >= 2)."""
    return sum(p.numel() for p in model.parameters() if p.dim() >= 2)
