"""What the measurements time: strategies built as the runner builds them, and EpiNet
models and memories filled in advance (building them is never timed)."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from benchmarks.perf.timing import clock

BATCH, LATENT = 128, 128  # a training batch; EpiNet's default latent size


def strategy_setup(bench, **overrides):
    """A StrategySetup as the runner builds it for ``bench`` with RunConfig's defaults."""
    from benchmarks.config import RunConfig
    from benchmarks.runner import AccuracyPlugin, strategy_setup

    defaults = RunConfig(benchmark=bench.name, strategy="naive")
    return replace(strategy_setup(defaults, bench, [AccuracyPlugin()]), **overrides)


def build_strategy(name: str, bench, seed: int = 0, options: dict | None = None, **overrides):
    """The registry's strategy ``name``, with its options validated as a run validates them."""
    from baselines.registry import get_strategy
    from benchmarks.runner import seed_everything

    spec = get_strategy(name)
    setup = strategy_setup(bench, **overrides)
    parsed = spec.validate_options(options or {}, setup.memory)
    seed_everything(seed)
    return spec.build(setup, parsed)


def timed_train(strategy, experience) -> float:
    """Seconds of ``strategy.train(experience)``, on the strategy's device."""
    now = clock(strategy.device)
    start = now()
    strategy.train(experience)
    return now() - start


def filled_model(bench, capacity: int | None = None, device="cpu"):
    """An EpiNetModel with the run's default options whose memory is full of real, encoded
    samples, on ``device`` (filled on the CPU: the same memory whatever the device)."""
    from baselines.epinet import EpiNetOptions, config_for
    from epinet.model import EpiNetModel

    setup = strategy_setup(bench)
    torch.manual_seed(0)
    model = EpiNetModel(config_for(EpiNetOptions(), capacity or setup.memory), setup.backbone, bench.n_classes)
    x, y, t = bench.train_stream[0].tensors
    n = model.config.capacity
    idx = torch.randint(len(y), (n,))
    with torch.no_grad():
        logits, z = model.forward_with_latent(x[idx])
        model.memorize(x[idx], z, torch.rand(n), y[idx], t[idx], logits)
    return model.to(device)


def random_memory(capacity: int, now: float = 1_000.0, class_balanced: bool = False, device="cpu"):
    """A full EpisodicMemory of random latents, saliences and timestamps (no images), on ``device``."""
    from epinet.memory import EpisodicMemory

    g = torch.Generator().manual_seed(capacity)
    memory = EpisodicMemory(capacity, (1, 28, 28), LATENT, class_balanced)
    memory.z.copy_(torch.randn(capacity, LATENT, generator=g))
    memory.c.copy_(F.normalize(memory.z, dim=1))
    memory.r0.copy_(torch.rand(capacity, generator=g) * 2)
    memory.tau.copy_(torch.rand(capacity, generator=g, dtype=torch.float64) * now)
    memory.y.copy_(torch.randint(10, (capacity,), generator=g))
    memory.size.fill_(capacity)
    return memory.to(device)


def encoded_memory(bench, capacity: int, uniform: bool = False, now: float = 1_000.0):
    """(A full EpisodicMemory of EpiNet's latents of MNIST training images, 128 test images'
    latents to query it with.) The encoder is EpiNet's, untrained, with the run's default
    options; images are drawn with replacement from every training experience (100,000 is
    more than MNIST holds). Salience: r0 ~ U(0, 1), or 1 with ``uniform``; storage times
    spread over [0, now). No raw inputs are kept (recall never reads them)."""
    from baselines.epinet import EpiNetOptions, config_for
    from epinet.memory import EpisodicMemory
    from epinet.model import EpiNetModel

    setup = strategy_setup(bench)
    torch.manual_seed(0)
    model = EpiNetModel(config_for(EpiNetOptions(), setup.memory), setup.backbone, bench.n_classes)
    train_x = torch.cat([exp.tensors[0] for exp in bench.train_stream])
    test_x = torch.cat([exp.tensors[0] for exp in bench.test_stream])
    g = torch.Generator().manual_seed(capacity)
    memory = EpisodicMemory(capacity, (1,), model.config.latent_dim)
    picks = torch.randint(len(train_x), (capacity,), generator=g)
    with torch.no_grad():
        for start in range(0, capacity, 10_000):
            z = model.encode(train_x[picks[start : start + 10_000]])
            memory.z[start : start + len(z)] = z
        queries = model.encode(test_x[torch.randperm(len(test_x), generator=g)[:BATCH]])
    memory.c.copy_(F.normalize(memory.z, dim=1))
    memory.r0.copy_(torch.ones(capacity) if uniform else torch.rand(capacity, generator=g))
    memory.tau.copy_(torch.rand(capacity, generator=g, dtype=torch.float64) * now)
    memory.size.fill_(capacity)
    return memory, queries
