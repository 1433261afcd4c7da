"""Tables of ``epinet-bench report`` from hand-made run JSONs, checked against numbers computed here.

Standard deviations are sample standard deviations (ddof = 1, pandas' default), computed here by
formula; Welch's t, its degrees of freedom and its two-sided p are computed here by formula too
(p by integrating Student's t density numerically), never by scipy.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.cli import build_parser
from benchmarks.markdown_blocks import read_block
from benchmarks.report import (
    README_END,
    README_START,
    embedded_table,
    human_bytes,
    load_runs,
    readme_table,
    report,
    update_readme,
)
from benchmarks.report.builders import tuning_table
from benchmarks.report.pages import SECTIONS
from benchmarks.report.reproduction import reproduction_tables
from benchmarks.report.selection import nested_results
from benchmarks.store import SCHEMA_VERSION
from tests.benchmarks.run_records import (
    ABLATION,
    MAIN,
    MEMORY,
    MEMORY_BYTES,
    cell,
    make_record,
    md_table,
    mean,
    sd,
    stars,
    welch_by_hand,
    write_dataset,
    write_record,
)

REPO = Path(__file__).resolve().parents[2]

# ----------------------------------------------------------------------------- hand-made runs


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    results = write_dataset(tmp_path_factory.mktemp("full"))
    out, log = [], []
    status = report(results, figures=False, out=out.append, log=log.append)
    return results, status, out, log


# ----------------------------------------------------------------------------- main table


def test_main_table_files_written_and_printed(full):
    results, status, out, log = full
    assert status == 0, log
    for name in ("main", "ablation", "memory"):
        for ext in ("md", "tex", "csv"):
            assert (results / "tables" / f"{name}.{ext}").stat().st_size > 0
    printed = "\n".join(out)
    assert (results / "tables" / "main.md").read_text().strip() in printed  # the main table ends the terminal output
    assert not [line for line in log if "could not render" in line or "Traceback" in line]


def test_main_cells_are_mean_pm_sample_std_with_n_and_order(full):
    results = full[0]
    md = (results / "tables" / "main.md").read_text()
    table = md_table(md)
    assert list(table) == ["naive", "ewc", "replay", "agem", "epinet", "joint"]  # display order (order.STRATEGY_ORDER)
    header = list(table["naive"])
    assert header.index("split-mnist final acc") < header.index(
        "permuted-mnist final acc"
    )  # benchmark order, not alphabetical
    assert table["naive"]["split-mnist final acc"] == "0.200 ± 0.010" + "\\*\\*"
    assert table["replay"]["split-mnist final acc"] == "0.810 ± 0.010"  # the reference carries no marker
    assert table["replay"]["split-mnist forgetting"] == "0.140 ± 0.010"
    assert table["ewc"]["permuted-mnist forgetting"] == cell([0.10, 0.12])
    for (bench, strategy), (accs, _) in MAIN.items():
        assert table[strategy][f"{bench} n"] == str(len(accs))
    assert table["agem"]["permuted-mnist final acc"] == "—" and table["agem"]["permuted-mnist n"] == "0"
    assert table["joint"]["split-mnist forgetting"] == "—"
    assert "ddof = 1" in md


def test_main_csv_numbers_match_hand_computation(full):
    csv = pd.read_csv(full[0] / "tables" / "main.csv").set_index(["benchmark", "strategy"])
    for (bench, strategy), (accs, forgs) in MAIN.items():
        row = csv.loc[(bench, strategy)]
        assert row["n"] == len(accs)
        assert row["final_accuracy_mean"] == pytest.approx(mean(accs), abs=1e-12)
        assert row["final_accuracy_std"] == pytest.approx(sd(accs), abs=1e-12)
        if strategy == "joint":
            assert math.isnan(row["average_forgetting_mean"]) and row["upper_bound"]
        else:
            assert row["average_forgetting_mean"] == pytest.approx(mean(forgs), abs=1e-12)
            assert row["average_forgetting_std"] == pytest.approx(sd(forgs), abs=1e-12)
        assert row["memory_bytes_mean"] == MEMORY_BYTES[strategy]


def test_welch_against_replay_matches_formula_and_markers(full):
    results = full[0]
    csv = pd.read_csv(results / "tables" / "main.csv").set_index(["benchmark", "strategy"])
    table = md_table((results / "tables" / "main.md").read_text())
    checked = 0
    for (bench, strategy), (accs, _) in MAIN.items():
        row = csv.loc[(bench, strategy)]
        reference = MAIN[bench, "replay"][0]
        if strategy == "replay" or sd(accs) == sd(reference) == 0:
            assert math.isnan(row["p_vs_replay"])
            continue
        t, df, p = welch_by_hand(accs, reference)
        assert row["welch_t_vs_replay"] == pytest.approx(t, rel=1e-9)
        assert row["welch_df_vs_replay"] == pytest.approx(df, rel=1e-9)
        assert row["p_vs_replay"] == pytest.approx(p, rel=1e-6, abs=1e-9)
        shown = table[strategy][f"{bench} final acc"].replace("**", "").removesuffix("†")  # bold and † aside
        assert shown == cell(accs) + stars(p)
        checked += 1
    assert checked == 9
    # the data were chosen to cover each marker: ** (p < 0.01), * (0.01 <= p < 0.05) and none
    assert table["epinet"]["split-mnist final acc"] == "**0.910 ± 0.010**\\*\\*"
    assert table["ewc"]["split-mnist final acc"] == "0.853 ± 0.015\\*†"
    assert table["agem"]["split-mnist final acc"] == "0.820 ± 0.026"
    assert csv.loc[("split-mnist", "ewc"), "p_vs_replay"] == pytest.approx(0.01986, abs=1e-4)


def test_bold_marks_best_continual_strategy_and_never_joint(full):
    results = full[0]
    table = md_table((results / "tables" / "main.md").read_text())
    bold = {(s, col) for s, row in table.items() for col, v in row.items() if v.startswith("**")}
    assert bold == {
        ("epinet", "split-mnist final acc"),  # joint's 0.970 is higher, but joint is an upper bound
        ("epinet", "split-mnist forgetting"),  # lowest forgetting
        ("ewc", "permuted-mnist final acc"),  # a tie as shown (0.710): both bold
        ("replay", "permuted-mnist final acc"),
        ("replay", "permuted-mnist forgetting"),
    }
    md = (results / "tables" / "main.md").read_text()
    assert "joint is excluded" in md and "upper bound" in md
    csv = pd.read_csv(results / "tables" / "main.csv")
    assert not csv.loc[csv["strategy"] == "joint", ["best_final_accuracy", "best_average_forgetting"]].any().any()


def test_dagger_marks_the_best_baseline_never_the_method_or_joint(full):
    results = full[0]
    table = md_table((results / "tables" / "main.md").read_text())
    marked = {(s, col) for s, row in table.items() for col, v in row.items() if v.endswith("†")}
    assert marked == {
        ("ewc", "split-mnist final acc"),  # 0.853: EpiNet (0.910, the method) and joint (0.970) aside
        ("ewc", "permuted-mnist final acc"),  # a tie as shown (0.710): both marked
        ("replay", "permuted-mnist final acc"),
    }
    csv = pd.read_csv(results / "tables" / "main.csv")
    assert set(csv.loc[csv["best_baseline"], "strategy"] + "@" + csv.loc[csv["best_baseline"], "benchmark"]) == {
        "ewc@split-mnist",
        "ewc@permuted-mnist",
        "replay@permuted-mnist",
    }
    assert "†: best baseline" in (results / "tables" / "main.md").read_text()
    tex = (results / "tables" / "main.tex").read_text()
    assert "0.853 $\\pm$ 0.015$^{*\\dagger }$" in tex and "$^\\dagger$: best baseline" in tex


def test_latex_uses_booktabs_bold_pm_and_footnotes(full):
    tex = (full[0] / "tables" / "main.tex").read_text()
    for token in ("\\toprule", "\\midrule", "\\bottomrule", "\\cmidrule(lr){2-4}", "\\multicolumn{3}{c}{split-mnist}"):
        assert token in tex
    assert "\\textbf{0.910 $\\pm$ 0.010}$^{**}$" in tex
    assert "0.853 $\\pm$ 0.015$^{*\\dagger }$" in tex
    assert "Welch" in tex and "±" not in tex
    assert tex.index("split-mnist") < tex.index("permuted-mnist")


def test_memory_column_is_human_readable(full):
    table = md_table((full[0] / "tables" / "main.md").read_text())
    assert {s: row["memory"] for s, row in table.items()} == {
        "naive": "0 B",
        "ewc": "19.1 MB",
        "replay": "1.6 MB",
        "epinet": "2.1 MB",
        "joint": "0 B",
        "agem": "512 B",
    }
    assert [human_bytes(n) for n in (999, 1000, 1_234_567, 999_960, 3 * 10**9)] == [
        "999 B",
        "1.0 kB",
        "1.2 MB",
        "1.0 MB",
        "3.0 GB",
    ]


# ----------------------------------------------------------------------------- ablation and memory tables


def test_ablation_table_against_full(full):
    results = full[0]
    table = md_table((results / "tables" / "ablation.md").read_text())
    assert list(table) == ["full (main)", "no-recall", "no-decay", "aaa-extra"]  # known variants first, then the rest
    full_acc, full_forg = MAIN["split-mnist", "epinet"]
    assert table["full (main)"]["final acc"] == cell(full_acc) and table["full (main)"]["Δ acc"] == "—"
    for variant, (accs, forgs) in ABLATION.items():
        row = table[variant]
        assert row["final acc"] == cell(accs)
        assert row["forgetting"] == cell(forgs)
        assert row["n"] == str(len(accs))
        assert row["Δ acc"] == f"{mean(accs) - mean(full_acc):+.3f}"
        assert row["Δ forgetting"] == f"{mean(forgs) - mean(full_forg):+.3f}"
    assert table["no-recall"]["Δ acc"] == "-0.100"
    csv = pd.read_csv(results / "tables" / "ablation.csv").set_index("variant")
    assert csv.loc["no-decay", "delta_final_accuracy"] == pytest.approx(0.89 - 0.91)


def test_memory_table_takes_500_from_main(full):
    results = full[0]
    table = md_table((results / "tables" / "memory.md").read_text())
    assert list(table) == ["100", "500", "1000"]
    assert (
        table["500"]["replay final acc"] == cell(MAIN["split-mnist", "replay"][0]) and table["500"]["replay n"] == "3"
    )
    assert table["100"]["epinet final acc"] == cell(MEMORY["epinet", 100])
    assert table["1000"]["replay bytes"] == human_bytes(1000 * 3136) == "3.1 MB"
    assert "main experiment" in (results / "tables" / "memory.md").read_text()


# ----------------------------------------------------------------------------- robustness


def run_cli(*argv) -> int:
    args = build_parser().parse_args(["report", *map(str, argv)])
    return args.fn(args)


def test_missing_and_empty_directories_exit_2_with_a_message(tmp_path, capsys):
    assert run_cli(tmp_path / "nowhere", "--no-figures") == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "nothing to report" in err and "Traceback" not in err
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    assert run_cli(tmp_path / "empty", "--no-figures") == 2
    err = capsys.readouterr().err
    assert "no run files" in err and "nothing to report" in err


def test_old_schema_file_is_named_and_the_rest_rendered(tmp_path, capsys):
    write_dataset(tmp_path, ablation=False, memory=False)
    old = make_record("split-mnist", "naive", 7, 0.5, 0.5)
    old["schema_version"] = 0
    old_path = write_record(tmp_path, old)
    garbled = old_path.with_name("seed8.json")
    garbled.write_text("{not json")
    assert run_cli(tmp_path, "--no-figures") == 0
    err = capsys.readouterr().err
    assert f"skipped {old_path}: schema version 0, this harness reads {SCHEMA_VERSION}" in err
    assert f"skipped {garbled}: unreadable JSON" in err
    assert "skipped tables/ablation: no ablation runs (role: ablation)" in err
    assert "skipped tables/memory: no memory runs (role: memory)" in err
    assert (tmp_path / "tables" / "main.md").exists() and not (tmp_path / "tables" / "ablation.md").exists()
    assert (
        md_table((tmp_path / "tables" / "main.md").read_text())["naive"]["split-mnist n"] == "3"
    )  # the old file is not counted


def test_only_corrupt_files_exit_2(tmp_path, capsys):
    old = make_record("split-mnist", "naive", 0, 0.5, 0.5)
    old["schema_version"] = 0
    write_record(tmp_path, old)
    assert run_cli(tmp_path, "--no-figures") == 2
    err = capsys.readouterr().err
    assert "schema version 0" in err and "nothing to report" in err


def test_partial_strategies_and_experiments(tmp_path, capsys):
    for seed, acc in enumerate([0.5, 0.6]):
        write_record(tmp_path, make_record("split-mnist-task", "naive", seed, acc, 0.2))
    write_record(tmp_path, make_record("split-mnist", "epinet", 0, 0.7, 0.1, experiment="ablation", variant="no-decay"))
    assert run_cli(tmp_path, "--no-figures") == 0
    captured = capsys.readouterr()
    table = md_table((tmp_path / "tables" / "main.md").read_text())
    assert list(table) == ["naive"] and table["naive"]["split-mnist-task final acc"] == "0.550 ± 0.071"
    assert "No test on split-mnist-task: replay has no runs there" in (tmp_path / "tables" / "main.md").read_text()
    ablation = md_table((tmp_path / "tables" / "ablation.md").read_text())
    assert (
        list(ablation) == ["full (main)", "no-decay"]
        and ablation["full (main)"]["n"] == "0"
        and ablation["no-decay"]["Δ acc"] == "—"
    )
    assert "no main-role epinet run on split-mnist" in captured.err
    assert "0.550 ± 0.071" in captured.out  # the main table is printed


def test_adhoc_runs_are_used_only_when_nothing_else(tmp_path, capsys):
    write_record(tmp_path, make_record("split-mnist", "replay", 0, 0.8, 0.1, experiment="adhoc"))
    assert run_cli(tmp_path, "--no-figures") == 0
    assert "ad-hoc runs" in capsys.readouterr().err
    assert list(md_table((tmp_path / "tables" / "main.md").read_text())) == ["replay"]
    write_record(tmp_path, make_record("split-mnist", "naive", 0, 0.2, 0.9))  # a main-experiment run hides them
    assert run_cli(tmp_path, "--no-figures") == 0
    assert list(md_table((tmp_path / "tables" / "main.md").read_text())) == ["naive"]
    with pytest.raises(ValueError, match="no main-role runs"):
        readme_table(
            write_record(
                tmp_path / "only-adhoc", make_record("split-mnist", "replay", 0, 0.8, 0.1, experiment="adhoc")
            ).parents[4]
        )


# ----------------------------------------------------------------------------- README block


def test_update_readme_rewrites_only_the_block(full, tmp_path, capsys):
    results = full[0]
    readme = tmp_path / "README.md"
    before, after = "# Title\n\nIntro.\n\n" + README_START + "\n", "\n" + README_END + "\n\nMore text.\n"
    readme.write_text(before + "old table" + after)
    assert run_cli(results, "--no-figures", "--update-readme", readme) == 0
    text = readme.read_text()
    assert text == before + readme_table(results) + after
    assert embedded_table(readme) == readme_table(results) == (results / "tables" / "main.md").read_text().strip("\n")
    assert update_readme(readme, results) == {"main-table": False}  # idempotent
    readme.write_text("# No markers\n")
    assert run_cli(results, "--no-figures", "--update-readme", readme) == 2
    assert "has no <!-- main-table:start --> ... <!-- main-table:end --> markers" in capsys.readouterr().err
    assert readme.read_text() == "# No markers\n"


def test_committed_tables_pages_and_readme_rerender_from_the_committed_runs(tmp_path):
    """results/tables, the blocks of results/README.md, results/tuning/tables and the README's
    main-table block are exactly what the committed run JSONs give today."""
    committed = REPO / "results"
    if not (committed / "runs").is_dir() or not (load_runs(committed).frame["role"] == "main").any():
        pytest.skip("results/runs has no main-role runs yet (the reference runs are committed later)")
    # render into a scratch directory that reads the committed runs: nothing is written into results/
    for name in ("runs", "figures", *(d.name for d in nested_results(committed))):
        if (committed / name).is_dir():
            (tmp_path / name).symlink_to(committed / name)
    if (committed / "perf.md").exists():
        (tmp_path / "perf.md").write_text((committed / "perf.md").read_text())
    log = []
    assert report(tmp_path, figures=False, out=lambda _: None, log=log.append) == 0, log
    stale = "is stale: run `epinet-bench report results --update-readme README.md`"
    made = sorted(p.name for p in (tmp_path / "tables").iterdir())
    assert made == sorted(p.name for p in (committed / "tables").iterdir() if p.is_file()), (
        "results/tables has other tables than the runs give"
    )
    for name in made:
        assert (committed / "tables" / name).read_text() == (tmp_path / "tables" / name).read_text(), (
            f"results/tables/{name} {stale}"
        )
    for block, _ in SECTIONS:
        assert read_block(committed / "README.md", block) == read_block(tmp_path / "README.md", block), (
            f"results/README.md block {block} {stale}"
        )
    tuning = committed / "tuning"
    if (tuning / "tables").is_dir():
        for path in tuning_table(load_runs(tuning).frame).write(tmp_path / "tuning-tables"):
            assert (tuning / "tables" / path.name).read_text() == path.read_text(), (
                f"results/tuning/tables/{path.name} is stale: run `epinet-bench report results/tuning`"
            )
    readme = REPO / "README.md"
    assert embedded_table(readme) == readme_table(committed), f"README's main table {stale}"
    for sub in nested_results(committed):
        frame = load_runs(sub).frame
        if not (frame["role"] == "reproduction").any():
            continue
        for table in reproduction_tables(frame):
            assert (sub / "tables" / f"{table.name}.md").read_text() == table.markdown() + "\n", (
                f"results/{sub.name}/tables/{table.name}.md is stale: run `epinet-bench report results/{sub.name}`"
            )
            update = f"epinet-bench report results/{sub.name} --update-readme README.md"
            assert table.markdown() in read_block(readme, "reproduction-table"), (
                f"README's reproduction table is stale: run `{update}`"
            )
