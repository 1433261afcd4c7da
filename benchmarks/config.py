"""Validated run and sweep configurations (pydantic); every error names the offending key."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from baselines.registry import get_strategy, known_strategies
from benchmarks.protocol import ONLINE_BATCH_SIZE, boundary_free, not_applicable
from benchmarks.roles import Role, role_named_like
from benchmarks.scenarios import BENCHMARKS, get_scenario
from epinet.backbones import check_backbone

# Torch threads of a run, in `run` and in every sweep worker alike: EpiNet's result moves with
# the thread count, so one default keeps a single run equal to the same run in a sweep.
DEFAULT_THREADS = 1

# Fields that say where things are or how loudly to run, not what is computed; role and
# reference say how the report reads a run, so declaring them never moves a stored result.
NOT_HASHED = {"seed", "data_root", "role", "reference"}
# Fields added after results were first stored: left out of the hash while at their default,
# so that adding a field never orphans the results already on disk.
HASHED_UNLESS_DEFAULT = {
    "train_per_experience",
    "replay_batch_size",
    "mlp_width",
    "input_scale",
    "init",
    "online",
    "blur",
}


class ConfigError(ValueError):
    """A configuration that cannot be run; the message names the key and the problem."""


def error_lines(err: ValidationError) -> list[str]:
    """Pydantic's errors as ``key: message`` lines (the one formatter of validation errors)."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{key}: {msg}" if key else msg)
    return lines


def explain(err: ValidationError, source: str = "config") -> ConfigError:
    return ConfigError("\n".join(f"{source}: {line}" for line in error_lines(err)))


class RunConfig(BaseModel):
    """One training run: a strategy on a benchmark with one seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    benchmark: str = Field(description="a registered benchmark (see `epinet-bench run --help`)")
    strategy: str = Field(description="a registered strategy (naive, replay, ewc, joint, epinet, ...)")
    seed: int = Field(0, ge=0, description="fixes data order, holdout, initialisation and sampling")
    epochs: PositiveInt = Field(1, description="epochs per experience")
    batch_size: PositiveInt = Field(128, description="training minibatch size")
    eval_batch_size: PositiveInt = Field(1000, description="evaluation minibatch size")
    lr: PositiveFloat = Field(1e-3, description="learning rate")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="adam | sgd")
    memory: PositiveInt = Field(500, description="memory budget in items (replay buffer, EpiNet capacity)")
    backbone: str = Field("mlp", description="a registered backbone")
    mlp_width: PositiveInt = Field(400, description="hidden width of the mlp backbone (the DER paper uses 100)")
    init: Literal["torch", "xavier"] = Field(
        "torch", description="initialisation of linear layers: torch's default | xavier (uniform, zero bias; Mammoth's)"
    )
    replay_batch_size: PositiveInt | None = Field(
        None, description="minibatch drawn from a replay memory per step (default: batch_size)"
    )
    input_scale: Literal["standard", "unit"] = Field(
        "standard", description="standard: pixels standardised with MNIST's mean and std | unit: pixels in [0, 1]"
    )
    n_experiences: PositiveInt | None = Field(None, description="experiences in the stream (default: the benchmark's)")
    valid_fraction: float = Field(
        0.1, ge=0, lt=1, description="share of each training experience held out for validation (0: none)"
    )
    train_per_experience: PositiveInt | None = Field(
        None, description="train on a seeded subset of this many samples per experience"
    )
    online: bool = Field(
        False,
        description="online protocol: one pass over mini-experiences of batch_size samples (default 10),"
        " no experience boundary given to the strategy; evaluated after each original experience",
    )
    blur: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="blurry benchmarks: share of each experience's samples from the other experiences'"
        " classes (default: the benchmark's, 0.1)",
    )
    eval_split: Literal["test", "valid"] = Field(
        "test", description="test (default) | valid (for choosing hyperparameters)"
    )
    fast_data: bool = Field(True, description="gather minibatches from tensors (same samples as Avalanche's loader)")
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    experiment: str = Field("adhoc", description="experiment name recorded with the result")
    variant: str = Field("default", description="variant name recorded with the result")
    role: Role | None = None  # how the report uses the run (benchmarks.roles); None: an ad-hoc run
    reference: str | None = None  # the strategy the report's significance tests compare with
    data_root: str | None = Field(None, description="directory holding MNIST/raw/ (default: $EPINET_DATA_ROOT)")

    @model_validator(mode="before")
    @classmethod
    def _online_batch_size(cls, data: Any) -> Any:
        # a stream without boundaries (online, task-free) takes minibatches of 10 unless
        # batch_size is given (set here, so the stored config and its hash say 10)
        if not isinstance(data, dict) or "batch_size" in data:
            return data
        try:
            online = TypeAdapter(bool).validate_python(data.get("online", False))
            task_free = get_scenario(str(data.get("benchmark"))).task_free
        except (ValidationError, ValueError):
            return data  # the fields' own validation reports it
        return {**data, "batch_size": ONLINE_BATCH_SIZE} if online or task_free else data

    @field_validator("benchmark")
    @classmethod
    def _known_benchmark(cls, v: str) -> str:
        return get_scenario(v).name

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, v: str) -> str:
        return check_backbone(v)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, v: str) -> str:
        get_strategy(v)  # raises "unknown strategy 'x'; known: ..."
        return v

    @model_validator(mode="after")
    def _protocol_consistent(self) -> RunConfig:
        if self.eval_split == "valid" and self.valid_fraction == 0:
            raise ValueError("eval_split 'valid' needs a validation split: set valid_fraction above 0")
        if self.mlp_width != 400 and self.backbone != "mlp":
            raise ValueError(f"mlp_width applies to the mlp backbone only (backbone is {self.backbone!r})")
        return self

    @model_validator(mode="after")
    def _experiences_fit_the_benchmark(self) -> RunConfig:
        get_scenario(self.benchmark).check_experiences(self.n_experiences)
        return self

    @model_validator(mode="after")
    def _strategy_options_valid(self) -> RunConfig:
        try:
            get_strategy(self.strategy).validate_options(self.strategy_options, self.memory)
        except ValidationError as err:
            raise ValueError(f"strategy_options for {self.strategy!r}: {'; '.join(error_lines(err))}") from None
        except ValueError as err:
            raise ValueError(f"strategy_options for {self.strategy!r}: {err}") from None
        return self

    @model_validator(mode="after")
    def _stream_protocol(self) -> RunConfig:
        scenario = get_scenario(self.benchmark)
        if self.blur is not None and scenario.default_blur is None:
            raise ValueError(f"blur applies to blurry benchmarks only ({self.benchmark} has no blurred boundaries)")
        why = not_applicable(self.strategy, self.strategy_options, self.memory, self.benchmark, self.online)
        if why:
            raise ValueError(why)
        protocol = boundary_free(self.benchmark, self.online)
        if protocol and self.epochs != 1:
            raise ValueError(f"{protocol} is a single pass: epochs must be 1 (got {self.epochs})")
        return self

    def hashed_fields(self) -> dict[str, Any]:
        fields = self.model_dump(exclude=NOT_HASHED)
        for name in HASHED_UNLESS_DEFAULT:
            if fields[name] == type(self).model_fields[name].default:
                del fields[name]
        return fields

    def config_hash(self) -> str:
        canonical = json.dumps(self.hashed_fields(), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def make_run_config(source: str = "arguments", **fields) -> RunConfig:
    try:
        return RunConfig(**fields)
    except ValidationError as err:
        raise explain(err, source) from None


class Experiment(BaseModel):
    """A block of a sweep: benchmarks x strategies x variants, each variant a set of overrides."""

    model_config = ConfigDict(extra="forbid")

    name: str
    benchmarks: list[str] = Field(min_length=1)
    strategies: list[str] = Field(min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"default": {}}, min_length=1)
    seeds: list[int] | None = Field(None, min_length=1)  # overrides the sweep's seeds for this block
    role: Role | None = None  # None: the role named like the experiment (benchmarks.roles)
    reference: str | None = None  # strategy the report tests the others against (Welch), e.g. replay

    @model_validator(mode="after")
    def _reference_is_run(self) -> Experiment:
        # a reference the block never runs would silently leave every test out
        if self.reference is not None and self.reference not in self.strategies:
            raise ValueError(
                f"reference {self.reference!r} is not one of the experiment's strategies ({', '.join(self.strategies)})"
            )
        return self


class SweepConfig(BaseModel):
    """A grid of runs. ``strategy_options`` is keyed by strategy, or ``strategy@benchmark``
    for a benchmark-specific value (e.g. an EWC lambda tuned per benchmark)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    seeds: list[int] = Field(min_length=1)
    defaults: dict[str, Any] = Field(default_factory=dict)
    strategy_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    experiments: list[Experiment] = Field(min_length=1)

    @field_validator("strategy_options")
    @classmethod
    def _keys_name_known_things(cls, options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # A mistyped key would otherwise be ignored and the run would train with defaults.
        strategies = known_strategies()
        for key in options:
            strategy, at, benchmark = key.partition("@")
            if strategy not in strategies:
                raise ValueError(f"key {key!r} names no known strategy; known: {', '.join(strategies)}")
            if at and benchmark not in BENCHMARKS:
                raise ValueError(f"key {key!r} names no known benchmark; known: {', '.join(BENCHMARKS)}")
            # Checked here too, for strategies the grid does not run (yet): a typo never waits.
            try:
                get_strategy(strategy).check_option_keys(options[key])
            except ValueError as err:
                raise ValueError(f"key {key!r}: {err}") from None
        return options

    def runs(self, data_root: str | None = None) -> list[RunConfig]:
        runs = []
        for exp in self.experiments:
            for bench, strat, (variant, over), seed in itertools.product(
                exp.benchmarks, exp.strategies, exp.variants.items(), exp.seeds or self.seeds
            ):
                # strategy_options merge key by key, from the sweep's down to the variant's
                options = {**self.strategy_options.get(strat, {}), **self.strategy_options.get(f"{strat}@{bench}", {})}
                for layer in (self.defaults, exp.overrides, over):
                    options.update(layer.get("strategy_options", {}))
                fields = {**self.defaults, **exp.overrides, **over}
                fields.pop("strategy_options", None)
                source = f"{self.name}: experiment {exp.name!r}, variant {variant!r}"
                runs.append(
                    make_run_config(
                        source,
                        **fields,
                        benchmark=bench,
                        strategy=strat,
                        seed=seed,
                        strategy_options=options,
                        experiment=exp.name,
                        variant=variant,
                        role=exp.role or role_named_like(exp.name),
                        reference=exp.reference,
                        data_root=data_root,
                    )
                )
        return runs


def load_sweep(path: str | Path) -> SweepConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"sweep config {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(
            f"sweep config {path} is a directory; give a YAML file such as benchmarks/configs/quick.yaml"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read sweep config {path}: {getattr(err, 'strerror', None) or err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse {path}: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return SweepConfig.model_validate(raw)
    except ValidationError as err:
        raise explain(err, str(path)) from None
