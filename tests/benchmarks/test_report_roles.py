"""Experiment roles and the significance reference: declared in the sweep, carried by each run
JSON outside the config hash, read by the report; runs stored before they existed fall back
to the role named like their experiment and the reference replay. Also the results page, code
versions and the LaTeX translation of notes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.config import ConfigError, SweepConfig, load_sweep, make_run_config
from benchmarks.markdown_blocks import read_block
from benchmarks.report import load_runs, report
from benchmarks.report.tables import tex_note
from tests.benchmarks.run_records import (
    cell,
    make_record,
    md_table,
    stars,
    welch_by_hand,
    write_record,
)

REPO = Path(__file__).resolve().parents[2]
LWF = {"naive": [0.20, 0.22, 0.19], "ewc": [0.50, 0.55, 0.52], "epinet": [0.70, 0.74, 0.69]}


def render(results: Path) -> tuple[int, list[str]]:
    log = []
    return report(results, figures=False, out=lambda _: None, log=log.append), log


# ----------------------------------------------------------------------------- the sweep side


def test_sweep_roles_reach_each_run_and_leave_its_hash_alone():
    sweep = SweepConfig.model_validate(
        {
            "name": "mine",
            "seeds": [0],
            "experiments": [
                {"name": "lwf", "benchmarks": ["split-mnist"], "strategies": ["naive", "ewc"], "reference": "ewc"},
                {"name": "knockouts", "role": "ablation", "benchmarks": ["split-mnist"], "strategies": ["naive"]},
                {
                    "name": "memory",
                    "benchmarks": ["split-mnist"],
                    "strategies": ["replay"],
                    "variants": {"m100": {"memory": 100}},
                },
                {
                    "name": "tune-lr",
                    "benchmarks": ["split-mnist"],
                    "strategies": ["naive"],
                    "overrides": {"eval_split": "valid"},
                },
            ],
        }
    )
    runs = sweep.runs()
    assert [(c.experiment, c.role, c.reference) for c in runs] == [
        ("lwf", "main", "ewc"),
        ("lwf", "main", "ewc"),  # no role declared: named like nothing known -> main
        ("knockouts", "ablation", None),  # declared
        ("memory", "memory", None),
        ("tune-lr", "tuning", None),  # named like a role
    ]
    plain = make_run_config(benchmark="split-mnist", strategy="naive", experiment="lwf")
    assert runs[0].config_hash() == plain.config_hash()  # role and reference are not hashed
    assert "role" in runs[0].model_dump() and "reference" in runs[0].model_dump()  # but stored


def test_committed_sweeps_declare_their_roles():
    roles = {
        name: {
            (e.name, e.role, e.reference)
            for e in load_sweep(REPO / "benchmarks" / "configs" / f"{name}.yaml").experiments
        }
        for name in ("paper", "quick", "tune")
    }
    assert roles["paper"] == {
        ("main", "main", "replay"),
        ("ablation", "ablation", None),
        ("memory", "memory", None),
        ("equal-bytes", "memory", None),
    }
    assert roles["quick"] == {("main", "main", "replay")}
    assert {role for _, role, _ in roles["tune"]} == {"tuning"}


def test_a_reference_the_experiment_does_not_run_is_refused():
    with pytest.raises(ValueError, match="reference 'replay' is not one of the experiment's strategies"):
        SweepConfig.model_validate(
            {
                "name": "x",
                "seeds": [0],
                "experiments": [
                    {"name": "main", "benchmarks": ["split-mnist"], "strategies": ["naive"], "reference": "replay"}
                ],
            }
        )
    with pytest.raises(ValueError, match="role"):
        SweepConfig.model_validate(
            {
                "name": "x",
                "seeds": [0],
                "experiments": [
                    {"name": "main", "role": "headline", "benchmarks": ["split-mnist"], "strategies": ["naive"]}
                ],
            }
        )
    assert issubclass(ConfigError, ValueError)


# ----------------------------------------------------------------------------- the report side


def test_an_experiment_called_lwf_with_role_main_makes_the_main_table_against_its_reference(tmp_path):
    for strategy, accs in LWF.items():
        for seed, acc in enumerate(accs):
            write_record(
                tmp_path,
                make_record("split-mnist", strategy, seed, acc, 0.3, experiment="lwf", role="main", reference="ewc"),
            )
    status, log = render(tmp_path)
    assert status == 0, log
    md = (tmp_path / "tables" / "main.md").read_text()
    table = md_table(md)
    assert list(table) == ["naive", "ewc", "epinet"]
    for strategy in ("naive", "epinet"):
        _, _, p = welch_by_hand(LWF[strategy], LWF["ewc"])
        assert table[strategy]["split-mnist final acc"].replace("**", "") == cell(LWF[strategy]) + stars(p)
    # the reference carries no significance marker; it is the best baseline here (†), EpiNet aside
    assert table["ewc"]["split-mnist final acc"] == cell(LWF["ewc"]) + "†"
    assert "against ewc, per benchmark" in md
    csv = pd.read_csv(tmp_path / "tables" / "main.csv")
    assert {"welch_t_vs_ewc", "p_vs_ewc"} <= set(csv.columns) and "p_vs_replay" not in csv.columns


def test_new_runs_without_a_reference_are_not_tested(tmp_path):
    for strategy in ("naive", "replay"):
        for seed, acc in enumerate([0.5, 0.6]):
            write_record(
                tmp_path,
                make_record(
                    "split-mnist",
                    strategy,
                    seed,
                    acc + (strategy == "replay") * 0.3,
                    0.2,
                    experiment="lwf",
                    role="main",
                ),
            )
    assert render(tmp_path)[0] == 0
    md = (tmp_path / "tables" / "main.md").read_text()
    assert "\\*" not in md.split("\n\n")[0] and "No significance test" in md
    assert not [c for c in pd.read_csv(tmp_path / "tables" / "main.csv").columns if c.startswith(("p_vs", "welch"))]


def test_legacy_runs_take_the_role_named_like_their_experiment_and_reference_replay(tmp_path):
    for seed, acc in enumerate([0.80, 0.82]):
        write_record(tmp_path, make_record("split-mnist", "replay", seed, acc, 0.1))  # experiment main, no role keys
        write_record(tmp_path, make_record("split-mnist", "naive", seed, acc - 0.6, 0.9))
        write_record(
            tmp_path,
            make_record("split-mnist", "epinet", seed, acc - 0.1, 0.2, experiment="ablation", variant="no-decay"),
        )
        write_record(
            tmp_path, make_record("split-mnist", "ewc", seed, acc - 0.2, 0.2, experiment="tune-ewc", variant="lambda-1")
        )
    frame = load_runs(tmp_path).frame
    assert dict(zip(frame["experiment"], frame["role"])) == {
        "main": "main",
        "ablation": "ablation",
        "tune-ewc": "tuning",
    }
    assert set(frame["reference"]) == {"replay"}
    log = render(tmp_path)[1]
    assert (
        "could not render tables/tuning: ValueError:"
        " tuning runs must be evaluated on the validation split (eval_split: valid)" in log
    )
    assert "against reservoir replay (replay)" in (tmp_path / "tables" / "main.md").read_text()
    assert list(md_table((tmp_path / "tables" / "ablation.md").read_text())) == ["full (main)", "no-decay"]


def test_ablations_of_any_strategy_on_any_benchmark(tmp_path):
    for seed, acc in enumerate([0.70, 0.72]):
        write_record(tmp_path, make_record("permuted-mnist", "replay", seed, acc, 0.1, role="main", reference="replay"))
        write_record(
            tmp_path,
            make_record(
                "permuted-mnist",
                "replay",
                seed,
                acc - 0.2,
                0.3,
                experiment="knockouts",
                variant="tiny-buffer",
                role="ablation",
            ),
        )
    assert render(tmp_path)[0] == 0
    md = (tmp_path / "tables" / "ablation.md").read_text()
    table = md_table(md)
    assert table["full (main)"]["final acc"] == cell([0.70, 0.72]) and table["tiny-buffer"]["Δ acc"] == "-0.200"
    assert "replay on permuted-mnist" in md
    assert (
        "% epinet-bench report: replay ablations on permuted-mnist."
        in (tmp_path / "tables" / "ablation.tex").read_text()
    )


def test_code_versions_under_each_table(tmp_path):
    for seed, acc in enumerate([0.5, 0.6, 0.7]):
        record = make_record("split-mnist", "naive", seed, acc, 0.2, git_commit="0b06ad0123456789" if seed else None)
        record["git_dirty"] = seed == 2
        write_record(tmp_path, record)
    assert render(tmp_path)[0] == 0
    expected = "Code version(s): 0b06ad0 (1 run), 0b06ad0+dirty (1 run), unknown (1 run)."
    assert (tmp_path / "tables" / "main.md").read_text().rstrip("\n").endswith("\n\n" + expected)
    assert f"\\footnotesize {expected}}}" in (tmp_path / "tables" / "main.tex").read_text()
    assert read_block(tmp_path / "README.md", "code-versions").endswith(
        "- main: " + expected.removeprefix("Code version(s): ")
    )


def test_results_page_keeps_hand_written_text_and_includes_perf_md(tmp_path):
    write_record(tmp_path, make_record("split-mnist", "naive", 0, 0.5, 0.2))
    assert render(tmp_path)[0] == 0
    page = tmp_path / "README.md"
    assert read_block(page, "main-table") == (tmp_path / "tables" / "main.md").read_text().strip("\n")
    assert read_block(page, "perf-table").startswith("No `perf.md` here")
    (tmp_path / "perf.md").write_text("Measured today.\n\n| measurement | result |\n|---|---|\n| x | 1 s |\n")
    page.write_text(page.read_text().replace("## Ablations", "My commentary stays.\n\n## Ablations"))
    assert render(tmp_path)[0] == 0
    text = page.read_text()
    assert "My commentary stays." in text
    assert read_block(page, "perf-table") == (tmp_path / "perf.md").read_text().strip("\n")
    assert read_block(page, "ablation-table") == "No ablation runs (role: ablation)."


def test_notes_are_written_once_and_translated_to_latex():
    md = "**Bold**: \\* p < 0.05, \\*\\* p ≥ 0.01 on memory_bytes, 1 MB = 10^6 bytes, Δ ± — `x_y`"
    assert (
        tex_note(md) == r"\textbf{Bold}: $^{*}$ p < 0.05, $^{**}$ p $\geq$ 0.01 on memory\_bytes,"
        r" 1 MB = $10^{6}$ bytes, $\Delta$ $\pm$ -- \texttt{x\_y}"
    )


def test_conflicting_references_are_named_and_the_most_declared_is_used(tmp_path):
    for seed, acc in enumerate([0.5, 0.6, 0.55]):
        write_record(tmp_path, make_record("split-mnist", "naive", seed, acc, 0.2, role="main", reference="ewc"))
        write_record(tmp_path, make_record("split-mnist", "ewc", seed, acc + 0.1, 0.2, role="main", reference="ewc"))
    write_record(tmp_path, make_record("permuted-mnist", "naive", 0, 0.5, 0.2, role="main", reference="naive"))
    status, log = render(tmp_path)
    assert status == 0
    assert "main: runs declare references ewc, naive; testing against ewc" in log
    assert "against ewc, per benchmark" in (tmp_path / "tables" / "main.md").read_text()
