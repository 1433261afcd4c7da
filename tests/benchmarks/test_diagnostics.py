"""``epinet-bench diagnose``: what it records is consistent with the run it watches, and watching
does not change the run."""

from __future__ import annotations

import json

import pytest

from benchmarks.cli import main
from benchmarks.config import RunConfig
from benchmarks.diagnostics.run import diagnose, run_name
from benchmarks.runner import run

SMALL = dict(strategy="epinet", eval_split="valid", batch_size=16, eval_batch_size=500, memory=40, seed=0)
# permuted-mnist with 3 experiences keeps the test short; split-mnist keeps its 5
BENCHMARKS = {"split-mnist": {}, "permuted-mnist": {"n_experiences": 3}}


def config(benchmark="split-mnist", **options) -> RunConfig:
    return RunConfig(benchmark=benchmark, **BENCHMARKS[benchmark], **SMALL, strategy_options=options)


def trained_classes(benchmark: str, experience: int) -> set[int]:
    """Classes of experiences 0..experience (split-mnist: two new ones each; permuted: all ten)."""
    return set(range(2 * experience + 2)) if benchmark == "split-mnist" else set(range(10))


@pytest.mark.parametrize(
    "benchmark, options",
    [
        # The notebook's settings: recall on, so memory keeps the latents re-encoding rewrites.
        ("split-mnist", {"preset": "notebook", "class_balanced": True}),
        (
            "permuted-mnist",
            {"preset": "notebook", "class_balanced": True, "balance_origin": True, "salience": "uniform"},
        ),
    ],
)
def test_composition_and_reencoding_records(synthetic_mnist, benchmark, options):
    d = diagnose(config(benchmark, **options), every=1, probe_size=1000, data=synthetic_mnist)
    records = d.records.set_index("iteration")
    assert len(records) == records.index.max()  # every=1: one record per iteration
    assert records["memory_size"].iloc[-1] == 40  # the memory filled up

    totals = d.composition.groupby(["iteration", "by"])["count"].sum().unstack()
    assert (totals["class"] == records["memory_size"]).all()
    assert (totals["origin"] == records["memory_size"]).all()
    for (iteration, by), rows in d.composition.groupby(["iteration", "by"]):
        experience = records.loc[iteration, "experience"]
        allowed = trained_classes(benchmark, experience) if by == "class" else set(range(experience + 1))
        assert set(rows["group"]) <= allowed, (iteration, by)
    final = d.composition[d.composition["iteration"] == records.index.max()]
    n = d.record["config"]["n_experiences"] or 5
    assert set(final[final["by"] == "origin"]["group"]) == set(range(n))  # balanced over origin or class: all kept

    # At every experience end: both sides of the re-encoding, on every experience seen so far.
    for experience in range(n):
        at_end = d.ends[d.ends["experience"] == experience]
        for stage in ("trained", "before_reencode", "after_reencode", "ended"):
            probed = at_end[at_end["stage"] == stage]["probe_experience"]
            assert sorted(probed) == list(range(experience + 1)), (experience, stage)
    after = d.ends[d.ends["stage"] == "after_reencode"]
    assert after[["r_shift_cos", "r_shift_rel", "prediction_flips"]].notna().all().all()
    assert list(d.reencodings["experience"]) == list(range(n))

    # The probes hold the whole validation split here, so the last stage is exactly what the
    # harness then evaluates: the accuracy matrix's row.
    ended = d.ends[d.ends["stage"] == "ended"]
    for row in ended.itertuples():
        assert row.accuracy == pytest.approx(d.record["accuracy_matrix"][row.experience][row.probe_experience])


def test_defaults_without_keys(synthetic_mnist):
    # v2's defaults keep no latents or keys (recall off): recall statistics are NaN, not 0, and
    # no re-encoding shift is recorded, while accuracy is still probed around each end.
    d = diagnose(config(), every=5, probe_size=1000, data=synthetic_mnist)
    assert d.records["batch_recall_agreement"].isna().all()
    assert d.reencodings.empty
    ended = d.ends[d.ends["stage"] == "ended"]
    for row in ended.itertuples():
        assert row.accuracy == pytest.approx(d.record["accuracy_matrix"][row.experience][row.probe_experience])


def test_each_experience_ends_with_a_record(synthetic_mnist):
    # every is longer than the whole run: only the experiences' last iterations are recorded,
    # so the final composition is the memory at the end of training.
    d = diagnose(config(class_balanced=True), every=10_000, probe_size=10, data=synthetic_mnist)
    last_iterations = d.ends.groupby("experience")["iteration"].first()
    assert list(d.records["iteration"]) == list(last_iterations)
    assert list(d.records["experience"]) == list(range(5))


def test_diagnosed_run_trains_like_a_plain_run(synthetic_mnist):
    options = {"class_balanced": True, "response_weight": 1.0, "consolidation_epochs": 1}
    diagnosed = diagnose(config(**options), every=2, probe_size=1000, data=synthetic_mnist)
    plain = run(config(**options), data=synthetic_mnist, progress=False)
    assert diagnosed.record["accuracy_matrix"] == plain["accuracy_matrix"]  # exactly


def test_loss_split(synthetic_mnist):
    # Without replay (beta = gamma = 0) the recomputed loss_main must be the whole loss the step
    # backpropagated (asymmetric: the classes seen are read before the batch is stored, as in the step).
    no_replay = diagnose(
        config(beta=0.0, response_weight=0.0, asymmetric=True), every=1, probe_size=10, data=synthetic_mnist
    ).records
    assert no_replay["loss_replay"].abs().max() < 1e-6
    assert (no_replay["replay_share"].abs() < 1e-6).all()

    # With stored responses the replay term is beta * CE + gamma * MSE; the CE part is less.
    both = diagnose(config(beta=1.0, response_weight=1.0), every=1, probe_size=10, data=synthetic_mnist).records
    replaying = both[both["loss_replay"] > 0]
    assert len(replaying) == len(both) - 1  # all but the first iteration, when memory is empty
    assert ((replaying["loss_replay_ce"] > 0) & (replaying["loss_replay_ce"] < replaying["loss_replay"])).all()
    assert ((replaying["replay_share"] > 0) & (replaying["replay_share"] < 1)).all()


def test_cli_writes_tables_summary_and_figure(synthetic_root, tmp_path, capsys):
    argv = ["diagnose", "--benchmark", "split-mnist", "--data-root", str(synthetic_root), "-q"]
    argv += ["--batch-size", "16", "--memory", "40", "--every", "3", "--out", str(tmp_path), "--variant", "v1"]
    assert main([*argv, "--option", "class_balanced=true"]) == 0
    out = tmp_path / "split-mnist-v1-seed0"
    assert "experience 2:" in capsys.readouterr().out
    for name in ("records.csv", "composition.csv", "ends.csv", "reencodings.csv", "overview.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["eval_split"] == "valid" and summary["config"]["strategy"] == "epinet"
    assert summary["run"] == out.name == run_name(RunConfig(**summary["config"]))
    assert len(summary["experience_ends"]) == 5


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--every", "0"], "--every and --probe-size must be at least 1 (got 0 and 2000)"),
        (["--probe-size", "-1"], "--every and --probe-size must be at least 1 (got 5 and -1)"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--option", "topk=3"], "unknown option 'topk' for strategy 'epinet'"),
    ],
)
def test_bad_input_is_one_line(synthetic_root, tmp_path, capsys, forbid, extra, expected):
    import benchmarks.diagnostics.run

    forbid(benchmarks.diagnostics.run, "run", "training started before the input was rejected")
    argv = ["diagnose", "--benchmark", "split-mnist", "--data-root", str(synthetic_root), "--out", str(tmp_path)]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("epinet-bench: error:") and "Traceback" not in err, err
    assert expected in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("flag", [["--strategy", "replay"], ["--eval-split", "test"]])
def test_strategy_and_split_are_not_flags(synthetic_root, capsys, flag):
    # diagnose runs EpiNet on validation only: choosing another strategy or the test split is refused.
    with pytest.raises(SystemExit) as exit_:
        main(["diagnose", "--benchmark", "split-mnist", "--data-root", str(synthetic_root), *flag])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "unrecognized arguments: " + " ".join(flag) in err, err
    assert err.count("\n") == 1


def test_library_refuses_the_test_split(synthetic_mnist):
    with pytest.raises(ValueError, match="validation split only"):
        diagnose(RunConfig(benchmark="split-mnist", strategy="epinet"), every=1, probe_size=10, data=synthetic_mnist)
