"""``epinet-bench report --html``: the page parses, is self-contained (no link to anything but its own
anchors and embedded images) and shows the numbers of the CSVs the same report wrote, on hand-made
runs and on the committed ones. The browser check (headless Chromium) runs where Chromium is installed."""

from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.aggregate import mean_std
from benchmarks.cli import build_parser
from benchmarks.report import load_runs, report
from benchmarks.report import reproduction as rep
from benchmarks.report.selection import nested_results
from benchmarks.units import human_bytes
from tests.benchmarks.run_records import MAIN, make_record, write_dataset, write_record

REPO = Path(__file__).resolve().parents[2]
PNG = base64.b64decode(  # a 1x1 PNG: what the page embeds must be these bytes
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PUBLISHED = """method,strategy,benchmark,buffer,published_mean,published_std,source
ER,replay,split-mnist,200,80.00,1.50,paper
SGD,naive,split-mnist,,20.00,,paper
"""


class Page(HTMLParser):
    """What the tests read from the page: its tables (cells with their data-sort keys), every URL
    it references, its element ids, the text of each <pre> and its stylesheet."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.urls: list[str] = []
        self.ids: set[str] = set()
        self.pres: list[str] = []
        self.style = ""
        self._table = self._cell = self._pre = self._style = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            assert attrs["id"] not in self.ids, f"duplicate id {attrs['id']}"
            self.ids.add(attrs["id"])
        self.urls += [attrs[key] for key in ("href", "src") if key in attrs]
        if tag == "table":
            self._table = {"csv": attrs.get("data-csv"), "headers": [], "rows": []}
            self.tables[attrs.get("id", f"anonymous-{len(self.tables)}")] = self._table
        elif tag == "tr" and self._table is not None:
            self._table["rows"].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = {
                "text": "",
                "sort": attrs.get("data-sort"),
                "value": attrs.get("data-value"),
                "class": attrs.get("class"),
                "tag": tag,
            }
        elif tag == "pre":
            self._pre = ""
        elif tag == "style":
            self._style = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table["rows"][-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            table = self._table
            table["headers"] = [c["text"] for c in table["rows"].pop(0)]
            self._table = None
        elif tag == "pre":
            self.pres.append(self._pre)
            self._pre = None
        elif tag == "style":
            self.style, self._style = self._style, None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._pre is not None:
            self._pre += data
        if self._style is not None:
            self._style += data


def rows_by_first_cell(table: dict) -> dict[str, dict[str, dict]]:
    return {row[0]["text"]: dict(zip(table["headers"], row)) for row in table["rows"]}


def assert_shows(cell: dict, mean: float, std: float | None = None, digits: int = 3):
    """The cell's sort key is the CSV's mean and its text the mean ± std as the tables print it."""
    if not math.isfinite(mean):
        assert cell["text"] == "—" and cell["sort"] == ""
        return
    assert float(cell["sort"]) == pytest.approx(mean, rel=1e-12, abs=1e-15)
    shown = mean_std(mean, std if std is not None and math.isfinite(std) else None, digits=digits)
    assert cell["text"].rstrip("*†") == shown, (cell["text"], shown)


def check_main(page: Page, results: Path):
    csv = pd.read_csv(results / "tables" / "main.csv")
    table = page.tables["table-main"]
    assert table["csv"] == "tables/main.csv"
    rows = rows_by_first_cell(table)
    for r in csv.to_dict("records"):
        row = rows[r["strategy"]]
        assert_shows(row[f"{r['benchmark']} final acc"], r["final_accuracy_mean"], r["final_accuracy_std"])
        assert_shows(row[f"{r['benchmark']} forgetting"], r["average_forgetting_mean"], r["average_forgetting_std"])
        assert row[f"{r['benchmark']} n"]["text"] == str(r["n"])
    assert len(rows) == csv["strategy"].nunique()


def rows_beside_csv(page: Page, table_id: str, csv_path: Path):
    """(cells by header, CSV record) for each row of the page's table, which must have the CSV's length."""
    csv = pd.read_csv(csv_path)
    table = page.tables[table_id]
    assert len(table["rows"]) == len(csv)
    return [(dict(zip(table["headers"], row)), r) for row, r in zip(table["rows"], csv.to_dict("records"))]


def check_reproduction(page: Page, table_id: str, csv_path: Path):
    for cells, r in rows_beside_csv(page, table_id, csv_path):
        assert (cells["benchmark"]["text"], cells["method"]["text"]) == (r["benchmark"], r["method"])
        assert_shows(cells["reproduced"], r["reproduced_mean"], r["reproduced_std"], digits=2)
        assert_shows(cells["published"], r["published_mean"], r["published_std"], digits=2)


def check_tuning(page: Page, table_id: str, csv_path: Path):
    for cells, r in rows_beside_csv(page, table_id, csv_path):
        assert (cells["strategy"]["text"], cells["variant"]["text"]) == (r["strategy"], r["variant"])
        assert cells["validation accuracy"]["text"] == mean_std(r["valid_accuracy_mean"], r["valid_accuracy_std"])
        assert cells["chosen"]["text"] == ("✔" if r["chosen"] else "")


def check_self_contained(page: Page):
    for url in page.urls:
        if url.startswith("#"):
            assert url[1:] in page.ids, f"link to a missing anchor {url}"
        else:
            assert url.startswith("data:image/png;base64,"), f"the page links to {url}: not self-contained"


# ----------------------------------------------------------------------------- hand-made runs


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Main, ablation and memory runs, a nested reproduction (its own report run first), a figure."""
    results = write_dataset(tmp_path_factory.mktemp("html"))
    write_record(results, make_record("split-mnist", "epinet", 7, 0.5, 0.2, git_commit="0123456789abcdef"))
    published = tmp_path_factory.mktemp("published")
    (published / "paper2020.csv").write_text(PUBLISHED)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rep, "PUBLISHED_DIR", published)
        for seed, (final, memory, strategy) in enumerate([(0.8, 200, "replay"), (0.82, 200, "replay")]):
            record = make_record(
                "split-mnist", strategy, seed, final, 0.1, experiment="paper2020", memory=memory, role="reproduction"
            )
            write_record(results / "paper2020", record)
        assert report(results / "paper2020", figures=False, out=lambda _: None, log=lambda _: None) == 0
        (results / "figures").mkdir()
        (results / "figures" / "forgetting.png").write_bytes(PNG)
        log = []
        status = report(results, figures=False, html=True, out=lambda _: None, log=log.append)
    return results, status, log, Page((results / "index.html").read_text())


def test_page_is_written_parses_and_is_self_contained(site):
    results, status, log, page = site
    assert status == 0, log
    assert not [line for line in log if "index.html" in line], log
    check_self_contained(page)
    assert {"main", "ablation", "memory", "reproduction", "figures", "runs"} <= page.ids


def test_main_table_shows_the_main_csv(site):
    results, _, _, page = site
    check_main(page, results)
    rows = rows_by_first_cell(page.tables["table-main"])
    assert list(rows) == ["naive", "ewc", "replay", "agem", "epinet", "joint"]  # the tables' display order


def test_ablation_and_memory_tables_show_their_csvs(site):
    results, _, _, page = site
    ablation = pd.read_csv(results / "tables" / "ablation.csv")
    rows = rows_by_first_cell(page.tables["table-ablation"])
    for r in ablation.to_dict("records"):
        assert_shows(rows[r["variant"]]["final acc"], r["final_accuracy_mean"], r["final_accuracy_std"])
        assert_shows(rows[r["variant"]]["forgetting"], r["average_forgetting_mean"], r["average_forgetting_std"])
        assert rows[r["variant"]]["n"]["text"] == str(r["n"])
    memory = pd.read_csv(results / "tables" / "memory.csv")
    rows = rows_by_first_cell(page.tables["table-memory"])
    for r in memory.to_dict("records"):
        assert_shows(
            rows[str(r["memory"])][f"{r['strategy']} final acc"], r["final_accuracy_mean"], r["final_accuracy_std"]
        )


def sorted_by_key(cells: dict[str, dict]) -> list[str]:
    """The row names in the order the page's script sorts them: by each cell's data-sort number."""
    return sorted(cells, key=lambda name: float(cells[name]["sort"]))


def test_memory_cells_sort_by_their_bytes_not_their_text(site):
    """'900 kB' must sort below '1.2 MB': the sort key is the byte count, the text its kB/MB/GB form."""
    results, _, _, page = site
    frame = load_runs(results).frame
    main_bytes = frame[frame["role"] == "main"].groupby("strategy")["memory_bytes"].mean()
    main = {s: row["memory"] for s, row in rows_by_first_cell(page.tables["table-main"]).items()}
    memory_csv = pd.read_csv(results / "tables" / "memory.csv")
    replay_bytes = memory_csv[memory_csv["strategy"] == "replay"].set_index("memory")["memory_bytes_mean"]
    replay = {size: row["replay bytes"] for size, row in rows_by_first_cell(page.tables["table-memory"]).items()}
    for cells, truth in ((main, main_bytes), (replay, {str(m): b for m, b in replay_bytes.items()})):
        for name, cell in cells.items():
            assert float(cell["sort"]) == pytest.approx(truth[name], rel=1e-12)
            assert cell["text"] == human_bytes(truth[name])
        assert sorted_by_key(cells) == sorted(cells, key=lambda name: truth[name])
    # the hand-made byte counts span B, kB and MB, so the numbers in the text alone sort differently
    assert sorted(replay, key=lambda size: float(replay[size]["text"].split()[0])) != sorted_by_key(replay)


def test_nested_reproduction_table_shows_its_csv(site):
    results, _, _, page = site
    table_id = "table-paper2020-reproduction-paper2020"
    assert page.tables[table_id]["csv"] == "paper2020/tables/reproduction-paper2020.csv"
    check_reproduction(page, table_id, results / "paper2020" / "tables" / "reproduction-paper2020.csv")


def test_figures_are_embedded_byte_for_byte(site):
    page = site[3]
    images = [u for u in page.urls if u.startswith("data:image/png;base64,")]
    assert [base64.b64decode(u.split(",", 1)[1]) for u in images] == [PNG]


def test_heatmap_is_the_mean_matrix_over_seeds_and_each_seed_is_listed(site):
    results, _, _, page = site
    frame = load_runs(results).frame
    main = frame[(frame["role"] == "main") & (frame["benchmark"] == "permuted-mnist") & (frame["strategy"] == "ewc")]
    expected = np.mean([np.asarray(m) for m in main["accuracy_matrix"]], axis=0)
    heatmap = page.tables["runs-permuted-mnist-ewc-matrix"]
    shown = np.array([[float(c["value"]) for c in row if c["tag"] == "td"] for row in heatmap["rows"]])
    np.testing.assert_allclose(shown, expected, rtol=1e-12)
    # each cell is coloured as the figures colour its value (to 0.01, the precision it shows)
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    for row in heatmap["rows"]:
        for cell in (c for c in row if c["tag"] == "td"):
            step = round(float(cell["value"]) * 100)
            assert cell["class"] == f"h{step}" and cell["text"] == f"{float(cell['value']):.2f}"
            assert f".h{step}{{background:{to_hex(colormaps['viridis'](step / 100))};" in page.style
    runs = page.tables["runs-permuted-mnist-ewc-runs"]
    assert [r[0]["text"] for r in runs["rows"]] == [str(s) for s in range(len(MAIN["permuted-mnist", "ewc"][0]))]
    finals = [float(r[1]["sort"]) for r in runs["rows"]]
    assert finals == pytest.approx(MAIN["permuted-mnist", "ewc"][0], abs=1e-12)


def test_each_run_shows_its_config_and_code_version(site):
    results, _, _, page = site
    rows = page.tables["runs-split-mnist-epinet-runs"]["rows"]
    by_seed = {r[0]["text"]: [c["text"] for c in r] for r in rows}
    assert by_seed["7"][4] == "0123456" and by_seed["0"][4] == "unknown"
    configs = [json.loads(text) for text in page.pres]
    record = json.loads(next((results / "runs" / "split-mnist" / "epinet").glob("*/seed7.json")).read_text())
    assert record["config"] in configs
    shown = load_runs(results).frame, load_runs(results / "paper2020").frame  # every run of the page's tables

    def key(config: dict) -> str:
        return json.dumps(config, sort_keys=True)

    assert sorted(map(key, configs)) == sorted(key(c) for frame in shown for c in frame["config"])


def test_every_configuration_the_tables_show_has_its_heatmap_and_runs(site):
    """Not only the main runs: each ablation variant, each memory budget (here two budgets of one
    variant name) and the nested reproduction runs have their own group, its heatmap their mean."""
    results, _, _, page = site
    groups = {  # config hash -> (runs table id, its rows) for every group of the page
        table["rows"][0][5]["text"]: (table_id, table["rows"])
        for table_id, table in page.tables.items()
        if table_id.endswith("-runs") and len({row[5]["text"] for row in table["rows"]}) == 1
    }
    nested = load_runs(results / "paper2020").frame
    others = pd.concat([load_runs(results).frame.query("role != 'main'"), nested], ignore_index=True)
    assert set(others["role"]) == {"ablation", "memory", "reproduction"}
    for config_hash, runs in others.groupby("config_hash"):
        table_id, rows = groups[config_hash]
        assert [row[0]["text"] for row in rows] == [str(s) for s in sorted(runs["seed"])]
        heatmap = page.tables[table_id.removesuffix("-runs") + "-matrix"]
        shown = np.array([[float(c["value"]) for c in row if c["tag"] == "td"] for row in heatmap["rows"]])
        expected = np.mean([np.asarray(m) for m in runs["accuracy_matrix"]], axis=0)
        np.testing.assert_allclose(shown, expected, rtol=1e-12)
    # the memory role's groups in order of budget: replay at 100 before replay at 1000
    memory = others.query("role == 'memory' and strategy == 'replay'").sort_values("memory")
    order = [groups[h][0] for h in memory.drop_duplicates("config_hash")["config_hash"]]
    assert len(order) == 2 and sorted(order, key=list(page.tables).index) == order


def test_no_page_without_the_flag(tmp_path):
    results = write_dataset(tmp_path, ablation=False, memory=False, strategies={"naive", "replay"})
    assert report(results, figures=False, out=lambda _: None, log=lambda _: None) == 0
    assert not (results / "index.html").exists()
    assert build_parser().parse_args(["report", str(results), "--html"]).html


# ----------------------------------------------------------------------------- the committed page


def test_committed_page_rerenders_and_shows_the_committed_tables(tmp_path):
    """results/index.html is what the committed runs (and committed figures) give today, and its
    numbers are those of results/tables and results/der2020/tables."""
    committed = REPO / "results"
    if not (committed / "index.html").exists():
        pytest.skip("no results/index.html committed yet")
    for name in ("runs", "figures", *(d.name for d in nested_results(committed))):
        if (committed / name).is_dir():
            (tmp_path / name).symlink_to(committed / name)
    assert report(tmp_path, figures=False, html=True, out=lambda _: None, log=lambda _: None) == 0
    assert (tmp_path / "index.html").read_text() == (committed / "index.html").read_text(), (
        "results/index.html is stale: run `epinet-bench report results --html`"
    )
    page = Page((committed / "index.html").read_text())
    check_self_contained(page)
    check_main(page, committed)
    for sub in nested_results(committed):
        for csv in sorted((sub / "tables").glob("reproduction-*.csv")):
            check_reproduction(page, f"table-{sub.name}-{csv.stem}", csv)
        if (sub / "tables" / "tuning.csv").exists():
            check_tuning(page, f"table-{sub.name}-tuning", sub / "tables" / "tuning.csv")
    # one page with every figure embedded: 14 strategies x 3 benchmarks of heatmaps made it 3.3 MB
    assert (committed / "index.html").stat().st_size < 6_000_000  # 5.1 MB with 16 ablation rows


# ----------------------------------------------------------------------------- in a real browser

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium / chromium-browser / google-chrome on PATH (apt-get install chromium)"
)
def test_page_renders_in_headless_chromium(site, tmp_path):
    """Chromium opens the page from disk (no network) and draws it: a screenshot with content."""
    shot = tmp_path / "index.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
         "--window-size=1400,2000", (site[0] / "index.html").as_uri()],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1400)
    assert pixels[..., :3].std() > 0.05  # not a blank page: text, tables and heatmap colours
