"""The strategy registry: built-ins, unknown names, the decorator, and a strategy that another
installed package declares through the ``epinet_bench.strategies`` entry-point group."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

import benchmarks
from baselines import registry
from baselines.registry import ENTRY_POINT_GROUP, UnknownStrategy, get_strategy, known_strategies, register_strategy
from benchmarks.cli import main
from benchmarks.store import read_result

BUILTINS = {"naive", "replay", "ewc", "joint", "epinet", "si", "ewc-online", "lwf"}


def test_builtin_strategies_are_registered():
    assert BUILTINS <= set(known_strategies())
    assert known_strategies() == sorted(known_strategies())
    assert {name for name in BUILTINS if get_strategy(name).joint} == {"joint"}


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(UnknownStrategy) as err:
        get_strategy("lwf-typo")
    message = str(err.value)
    assert message.startswith("unknown strategy 'lwf-typo'; known: ")
    assert message.removeprefix("unknown strategy 'lwf-typo'; known: ").split(", ") == known_strategies()


@pytest.fixture
def tiny_strategy():
    """Registers ``test-tiny`` for one test and removes it afterwards."""
    assert "test-tiny" not in known_strategies(), "test-tiny is already registered: an earlier test leaked it"
    calls = []

    class TinyOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")
        width: int = 1

    @register_strategy("test-tiny", options=TinyOptions, memory_bytes=lambda strategy: 1234)
    def build(setup, options):
        calls.append((setup, options))
        return setup.strategy(setup.classifier())

    yield calls
    registry._REGISTRY.pop("test-tiny", None)


def test_registered_strategy_runs_through_the_cli(tiny_strategy, run_argv, synthetic_root, tmp_path, capsys):
    assert "test-tiny" in known_strategies()
    results = tmp_path / "results"
    options = ["--option", "width=3", "--memory", "7", "--n-experiences", "2", "--batch-size", "32"]
    code = main(run_argv(synthetic_root, results, *options, strategy="test-tiny"))
    assert code == 0, capsys.readouterr().err
    ((setup, options),) = tiny_strategy
    assert options.width == 3 and setup.memory == 7 and setup.batch_size == 32
    (path,) = results.rglob("seed0.json")
    result = read_result(path)
    assert result.config["strategy"] == "test-tiny"
    assert result.metrics.memory_bytes == 1234
    assert len(result.accuracy_matrix) == 2


def test_registered_strategy_options_are_validated(tiny_strategy):
    with pytest.raises(ValueError, match="depth"):
        get_strategy("test-tiny").validate_options({"depth": 2}, memory=10)
    assert tiny_strategy == []  # nothing was built


# A plug-in whose options model is a plain BaseModel (pydantic ignores unknown keys there):
# the registry must still reject a mistyped option.
LWF_MODULE = """
from avalanche.training.plugins import LwFPlugin
from pydantic import BaseModel

from baselines.registry import register_strategy


class LwFOptions(BaseModel):
    alpha: float = 1.0
    temperature: float = 2.0


@register_strategy("lwf-stock", options=LwFOptions)
def build(setup, options):
    return setup.strategy(setup.classifier(), plugins=[LwFPlugin(alpha=options.alpha, temperature=options.temperature)])
"""


def test_a_field_behind_an_alias_is_known_by_its_alias_only():
    class AliasedOptions(BaseModel):  # pydantic reads "temp" and ignores "temperature" here
        temperature: float = Field(2.0, alias="temp")

    register_strategy("test-aliased", options=AliasedOptions)(lambda setup, options: None)
    try:
        spec = get_strategy("test-aliased")
        with pytest.raises(ValueError, match=r"unknown option 'temperature' for strategy 'test-aliased'; known: temp$"):
            spec.validate_options({"temperature": 1.5}, memory=10)
        assert spec.validate_options({"temp": 1.5}, memory=10).temperature == 1.5
    finally:
        registry._REGISTRY.pop("test-aliased", None)


def test_plain_basemodel_options_are_strict_too(tiny_strategy):
    class LooseOptions(BaseModel):  # no extra="forbid": pydantic alone would drop the typo
        temperature: float = 2.0

    register_strategy("test-loose", options=LooseOptions)(lambda setup, options: None)
    try:
        spec = get_strategy("test-loose")
        with pytest.raises(
            ValueError, match=r"unknown option 'temprature' for strategy 'test-loose'; known: temperature"
        ):
            spec.validate_options({"temprature": 1.5}, memory=10)
        assert spec.validate_options({"temperature": 1.5}, memory=10).temperature == 1.5
    finally:
        registry._REGISTRY.pop("test-loose", None)


def test_strategy_from_another_installed_package_runs_end_to_end(tmp_path, synthetic_root):
    """A separately installed package (a module plus its dist-info with an entry point) adds
    ``lwf-stock`` (Avalanche's LwFPlugin as it is); the installed ``epinet-bench`` command finds it and runs it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "lwf_plugin_pkg.py").write_text(LWF_MODULE)
    dist_info = site / "lwf_plugin_pkg-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: lwf-plugin-pkg\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nlwf-stock = lwf_plugin_pkg\n")
    assert "lwf-stock" not in known_strategies()  # not in this process: only the other package provides it

    script = Path(sys.executable).with_name("epinet-bench")
    assert script.is_file(), f"console script missing: {script} (is the package installed?)"
    results = tmp_path / "results"
    code_root = Path(benchmarks.__file__).resolve().parents[1]  # the checkout under test, as in this process
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(code_root)]), "OMP_NUM_THREADS": "1"}
    env.pop("EPINET_DATA_ROOT", None)

    def cli(*extra):
        return subprocess.run(
            [str(script), "run", "--benchmark", "split-mnist", "--strategy", "lwf-stock",
             "--data-root", str(synthetic_root), "--results", str(results), "--batch-size", "32", "-q", *extra],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    typo = cli("--option", "temprature=1.5")
    assert typo.returncode == 2 and not results.exists()
    assert typo.stderr.strip() == (
        "epinet-bench: error: arguments: strategy_options for 'lwf-stock': "
        "unknown option 'temprature' for strategy 'lwf-stock'; known: alpha, temperature"
    )
    proc = cli("--option", "temperature=1.5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = results.rglob("seed0.json")
    assert path.parent.parent.name == "lwf-stock"
    record = json.loads(path.read_text())
    assert record["config"]["strategy"] == "lwf-stock" and record["config"]["strategy_options"] == {"temperature": 1.5}
    assert len(record["accuracy_matrix"]) == 5 and all(len(row) == 5 for row in record["accuracy_matrix"])
    read_result(path)  # re-derives, although this process does not have the plug-in
    assert f"saved {path}" in proc.stdout
    assert "Traceback" not in proc.stderr
