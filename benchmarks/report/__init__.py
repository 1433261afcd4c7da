"""Result tables, figures, the results page and the README's main-table block (``epinet-bench report``).

One module per job, imported in this order (no module imports one below it):

* ``order``      display order and names of strategies, benchmarks, variants; the accuracy matrices' colours
* ``selection``  loading run JSONs; which runs each table shows (roles, reference, legacy fallback)
* ``stats``      mean ± std cells, Welch's t-test, best-of-column, bytes, code versions
* ``tables``     Table/Column and the Markdown, LaTeX and CSV renderers
* ``builders``   what the main, ablation, memory and tuning tables contain
* ``figures``    the figures (matplotlib Agg, seaborn); loaded only when figures are drawn
* ``pages``      the top README's main-table block and the results page
* ``run_groups`` the page's runs section: per group of runs its tables show, heatmap and run list
* ``html``       ``index.html``, the self-contained browsable page (``report --html``)
* ``command``    ``report()``: every artifact, each built on its own

Statistics: a cell is the mean ± the sample standard deviation (pandas ``std``, ddof=1) over
the seeds of that cell; the ± part is left out when there is a single seed. Significance is
Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``, two-sided) on final accuracy over
seeds against the reference strategy the sweep declares, per benchmark.
"""

from benchmarks.report.command import report
from benchmarks.report.pages import (
    README_END,
    README_START,
    embedded_table,
    readme_table,
    update_readme,
    write_results_page,
)
from benchmarks.report.selection import NoData, Runs, load_runs
from benchmarks.report.stats import welch
from benchmarks.units import human_bytes

__all__ = [
    "README_END",
    "README_START",
    "NoData",
    "Runs",
    "embedded_table",
    "human_bytes",
    "load_runs",
    "readme_table",
    "report",
    "update_readme",
    "welch",
    "write_results_page",
]
