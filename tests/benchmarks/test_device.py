"""``--device``: parsed in one place, kept out of the config hash (every committed result is still
found as finished, and loads without the new field), recorded with each result by name; and,
where a GPU is present, every strategy (EpiNet's memory included) trains and evaluates on it."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from avalanche.core import SupervisedPlugin

from baselines.registry import get_strategy, known_strategies
from benchmarks import devices
from benchmarks.aggregate import runs_frame, summary
from benchmarks.config import RunConfig, load_sweep
from benchmarks.provenance import cpu_model
from benchmarks.runner import run
from benchmarks.store import RunResult, result_path, valid_result_for

REPO = Path(__file__).resolve().parents[2]
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine (torch.cuda.is_available() is False)")
# The committed sweeps and where their results are: none may be orphaned by a new run setting.
COMMITTED = {"paper": "results", "quick": "results", "der2020": "results/der2020", "tune": "results/tuning"}


@pytest.mark.parametrize("text", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_syntax_accepted(text):
    assert devices.parse(text) == text


@pytest.mark.parametrize("text", ["gpu", "cuda:", "CUDA", "cpu:0", "mps", "cuda:-1", ""])
def test_device_syntax_rejected_in_one_line(text):
    with pytest.raises(ValueError, match=r"^--device must be auto, cpu, cuda or cuda:N \(got .*\)$"):
        devices.parse(text)


def test_the_default_is_cpu():
    assert devices.parse(None) == "cpu"


def test_auto_takes_a_gpu_where_there_is_one():
    assert devices.resolve("auto").type == ("cuda" if CUDA else "cpu")


def test_committed_results_are_still_found_and_load_without_a_device():
    """The device is not in the config hash: every run committed for the shipped sweeps is found
    as finished (read only: nothing is moved), and records written before it load without it."""
    assert "device" not in RunConfig.model_fields  # a run setting, like the thread count, not a config field
    found = older = 0
    for sweep, results in COMMITTED.items():
        for config in load_sweep(REPO / "benchmarks" / "configs" / f"{sweep}.yaml").runs():
            result, problem = valid_result_for(result_path(REPO / results, config), config)
            assert problem is None and result is not None, (sweep, config)
            assert result.device is None or result.device["type"] == "cpu", (sweep, config)
            older += result.device is None  # made before devices were recorded
            found += 1
    assert found >= 500 and older >= 300


def test_cpu_run_records_its_device_and_mixes_with_older_records(synthetic_root):
    config = RunConfig(benchmark="split-mnist", strategy="naive", n_experiences=2, batch_size=32,
                       data_root=str(synthetic_root))  # fmt: skip
    record = run(config, progress=False, device="cpu")
    assert record["device"] == {"type": "cpu", "name": cpu_model()}
    assert RunResult.model_validate(record).device["type"] == "cpu"
    older = {key: value for key, value in record.items() if key != "device"}
    assert RunResult.model_validate(older).device is None
    assert summary(runs_frame([record, {**older, "config": {**older["config"], "seed": 1}}]))["seeds"].tolist() == [2]


# ----------------------------------------------------------------------------- on a GPU


class Placement(SupervisedPlugin):
    """The devices of the model's parameters and buffers after each training experience."""

    def __init__(self):
        super().__init__()
        self.devices: set[str] = set()
        self.model = None

    def after_training_exp(self, strategy, **kwargs):
        self.model = strategy.model
        self.devices |= {str(t.device) for t in (*strategy.model.parameters(), *strategy.model.buffers())}


@needs_cuda
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("benchmark", ["split-mnist", "split-mnist-task"])
@pytest.mark.parametrize("strategy", known_strategies())
def test_every_strategy_trains_and_evaluates_on_cuda(synthetic_root, strategy, benchmark, monkeypatch):
    import benchmarks.runner

    placement = Placement()
    real = benchmarks.runner.strategy_setup
    monkeypatch.setattr(
        benchmarks.runner,
        "strategy_setup",
        lambda config, bench, plugins, device: real(config, bench, [*plugins, placement], device),
    )
    config = RunConfig(benchmark=benchmark, strategy=strategy, seed=1, batch_size=16, replay_batch_size=8,
                       eval_batch_size=50, memory=40, data_root=str(synthetic_root))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record = run(config, progress=False, device="cuda")
    assert record["device"]["type"] == "cuda" and record["device"]["name"] == torch.cuda.get_device_name(0)
    assert record["device"]["peak_allocated_bytes"] > 0
    assert placement.devices == {"cuda:0"}, placement.devices  # no parameter or buffer left on the CPU
    assert record["accuracy_matrix"][0][0] > 0.6, record["accuracy_matrix"]
    assert len(record["accuracy_matrix"]) == (1 if get_strategy(strategy).joint else 5)
    if strategy == "epinet":  # the episodic memory: filled, and on the GPU with the rest
        memory = placement.model.memory
        assert len(memory) > 0 and {b.device.type for b in memory.buffers()} == {"cuda"}


@needs_cuda
def test_cli_sweep_on_cuda_records_the_gpu(tmp_path, synthetic_root, capsys):
    from benchmarks.cli import main

    sweep = tmp_path / "gpu.yaml"
    sweep.write_text(
        "name: gpu\nseeds: [0]\ndefaults: {batch_size: 32, n_experiences: 2}\n"
        "experiments:\n  - {name: main, benchmarks: [split-mnist], strategies: [naive, epinet]}\n"
    )
    argv = ["sweep", str(sweep), "--device", "cuda", "--jobs", "2", "-q",
            "--data-root", str(synthetic_root), "--results", str(tmp_path / "res")]  # fmt: skip
    assert main(argv) == 0
    assert "2 ran, 0 reused, 0 failed" in capsys.readouterr().out
    records = [RunResult.model_validate_json(p.read_text()) for p in (tmp_path / "res").rglob("seed0.json")]
    assert len(records) == 2
    assert all(r.device["type"] == "cuda" and r.device["name"] == torch.cuda.get_device_name(0) for r in records)
