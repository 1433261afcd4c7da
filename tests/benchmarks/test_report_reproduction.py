"""Published vs reproduced: the table set beside a published CSV, on hand-made runs, and the
committed reproduction (der2020.yaml against its published CSV)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from benchmarks.report import load_runs, report
from benchmarks.report import reproduction as rep
from benchmarks.report.selection import NoData
from tests.benchmarks.run_records import make_record, write_record

REPO = Path(__file__).resolve().parents[2]
CSV = """method,strategy,benchmark,buffer,published_mean,published_std,source
SGD,naive,split-mnist,,20.00,,paper
ER,replay,split-mnist,200,80.00,1.50,paper
ER,replay,split-mnist,500,86.00,,paper
DER,der,split-mnist,500,90.00,,paper
"""
RUNS = {  # (strategy, memory) -> final accuracies over seeds
    ("naive", 500): [0.19, 0.20, 0.22],
    ("replay", 200): [0.80, 0.81, 0.79],
    ("replay", 500): [0.82, 0.83, 0.81],
}


@pytest.fixture
def reproduced(tmp_path, monkeypatch):
    published = tmp_path / "published"
    published.mkdir()
    (published / "paper2020.csv").write_text(CSV)
    monkeypatch.setattr(rep, "PUBLISHED_DIR", published)
    results = tmp_path / "results"
    for (strategy, memory), finals in RUNS.items():
        for seed, final in enumerate(finals):
            record = make_record(
                "split-mnist",
                strategy,
                seed,
                final,
                0.1,
                experiment="paper2020",
                variant=f"m{memory}",
                memory=memory,
                role="reproduction",
            )
            write_record(results, record)
    return results


def test_each_published_row_sits_beside_its_runs(reproduced):
    (table,) = rep.reproduction_tables(load_runs(reproduced).frame)
    numbers = table.numbers.set_index(["method", "buffer"], drop=False)
    for (strategy, memory), finals in RUNS.items():
        method, buffer = {"naive": ("SGD", -1), "replay": ("ER", memory)}[strategy]
        row = numbers[(numbers["method"] == method) & (numbers["buffer"].fillna(-1) == buffer)]
        assert len(row) == 1
        row = row.iloc[0]
        ours = pd.Series(finals) * 100
        half = stats.t.ppf(0.975, len(ours) - 1) * ours.std() / math.sqrt(len(ours))
        assert row["reproduced_mean"] == pytest.approx(ours.mean())
        assert row["reproduced_std"] == pytest.approx(ours.std())
        assert row["difference"] == pytest.approx(ours.mean() - row["published_mean"])
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ours.mean() - half, ours.mean() + half))
        assert row["published_in_ci"] == (ours.mean() - half <= row["published_mean"] <= ours.mean() + half)
        assert row["within_tolerance"] == (abs(ours.mean() - row["published_mean"]) <= 2)
    # by hand: ER 200 = 80.00 ± 1.00, published 80.00 inside; ER 500 = 82.00, 4 points short
    er200, er500 = numbers.loc[("ER", 200.0)], numbers.loc[("ER", 500.0)]
    verdict = ["difference", "published_in_ci", "within_tolerance"]
    assert tuple(er200[verdict]) == (pytest.approx(0), True, True)
    assert tuple(er500[verdict]) == (pytest.approx(-4), False, False)
    der = numbers.loc[("DER", 500.0)]
    assert der["n"] == 0 and math.isnan(der["reproduced_mean"]) and der["published_in_ci"] is None


def test_the_markdown_shows_percent_differences_and_verdicts(reproduced):
    (table,) = rep.reproduction_tables(load_runs(reproduced).frame)
    lines = table.markdown().splitlines()
    er500 = next(line for line in lines if "| ER " in line and "| 500 " in line)
    cells = [c.strip() for c in er500.strip("|").split("|")]
    assert cells == ["split-mnist", "ER", "500", "86.00", "82.00 ± 1.00", "3", "-4.00", cells[7], "**no**", "**no**"]
    er200 = next(line for line in lines if "| ER " in line and "| 200 " in line)
    assert "80.00 ± 1.50" in er200 and "80.00 ± 1.00" in er200 and "+0.00" in er200
    der = next(line for line in lines if "| DER " in line)
    assert [c.strip() for c in der.strip("|").split("|")][4:] == ["—", "0", "—", "—", "—", "—"]


def test_report_writes_the_table_and_the_results_page_block(reproduced):
    log = []
    assert report(reproduced, figures=False, out=lambda _: None, log=log.append) == 0
    written = (reproduced / "tables" / "reproduction-paper2020.md").read_text()
    assert "Published vs reproduced" not in written  # the title is the caption in LaTeX, not in Markdown
    assert "82.00 ± 1.00" in written
    assert (reproduced / "tables" / "reproduction-paper2020.tex").read_text().count("\\midrule") == 1
    assert "82.00 ± 1.00" in (reproduced / "README.md").read_text()


@pytest.mark.parametrize(
    "csv, message",
    [
        ("method,strategy,benchmark,buffer,published_mean,source\n", "missing column(s) published_std"),
        (CSV.replace(",200,", ",two hundred,"), "row 3: buffer 'two hundred' is not a number"),
        (CSV.replace("20.00,,paper", ",,paper"), "row 2: published_mean is empty"),
    ],
)
def test_a_broken_published_table_is_named(tmp_path, csv, message):
    (tmp_path / "bad.csv").write_text(csv)
    with pytest.raises(ValueError) as err:
        rep.load_published("bad", tmp_path)
    assert str(tmp_path / "bad.csv") in str(err.value) and message in str(err.value)


def test_reproduction_runs_without_a_published_table_are_skipped_with_a_message(reproduced, tmp_path, monkeypatch):
    monkeypatch.setattr(rep, "PUBLISHED_DIR", tmp_path / "nowhere")
    with pytest.raises(NoData, match="no published table"):
        rep.reproduction_tables(load_runs(reproduced).frame)
    log = []
    report(reproduced, figures=False, out=lambda _: None, log=log.append)
    assert any("skipped tables/reproduction" in line and "no published table" in line for line in log)
