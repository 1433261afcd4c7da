"""The figure of one diagnosed run (``overview.png``), six panels over training iterations:

(a) memory by class and (b) by experience of origin, stacked areas; (c) decayed salience in
memory, median with 25-75 % and 5-95 % bands; (d) the loss: loss_main and the replay term, with
the replay term's share of the total; (e) what recall feeds the decoder on the training batch:
the norms of z and of r (the decoder's input is [z; r]) and the recall weight on the batch's
own class; (f) at each experience end, accuracy on the experience just trained after its last
epoch, before and after re-encoding, with the cosine between r before and after re-encoding for
the same validation inputs.

Experiences are numbered from 1 here (the tables' ``experience`` columns count from 0). Dashed
verticals mark experience ends.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # before pyplot/seaborn load a backend: no display is needed or used

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

if TYPE_CHECKING:
    from benchmarks.diagnostics.run import Diagnosis

DPI = 72  # the committed figures stay small (tens of kB each)
BARS = {"trained": "after last epoch", "before_reencode": "before re-encoding", "after_reencode": "after re-encoding"}


def _experience_ends(ax: Axes, ends: pd.DataFrame) -> None:
    for iteration in ends.groupby("experience")["iteration"].first():
        ax.axvline(iteration, color="grey", linestyle="--", linewidth=0.6)


def _stacked(ax: Axes, composition: pd.DataFrame, by: str, label: str, capacity: int) -> None:
    counts = composition[composition["by"] == by].pivot(index="iteration", columns="group", values="count").fillna(0)
    colours = sns.color_palette("tab10" if counts.shape[1] <= 10 else "husl", counts.shape[1])
    names = [f"{label} {g + 1 if by == 'origin' else g}" for g in counts.columns]
    ax.stackplot(counts.index, counts.to_numpy().T, labels=names, colors=colours, linewidth=0)
    title = "memory by experience of origin" if by == "origin" else "memory by class"
    ax.set(ylim=(0, capacity), ylabel="items in memory", title=title)
    # Outside the axes, last group on top as in the stack: the areas fill the whole panel.
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], fontsize=6, loc="upper left", bbox_to_anchor=(1, 1), frameon=False)


def _salience(ax: Axes, records: pd.DataFrame) -> None:
    x, colour = records["iteration"], sns.color_palette()[0]
    ax.fill_between(x, records["salience_q05"], records["salience_q95"], color=colour, alpha=0.2, label="5-95 %", lw=0)
    ax.fill_between(x, records["salience_q25"], records["salience_q75"], color=colour, alpha=0.4, label="25-75 %", lw=0)
    ax.plot(x, records["salience_q50"], color=colour, label="median")
    ax.plot(x, records["salience_min"], color="grey", linewidth=0.6, linestyle=":", label="min / max")
    ax.plot(x, records["salience_max"], color="grey", linewidth=0.6, linestyle=":")
    low, high = records["salience_min"].min(), records["salience_max"].max()
    if low > 0 and high / low > 50:  # loss salience spans decades; uniform salience does not
        ax.set_yscale("log")
    ax.set(ylabel="decayed salience", title="salience in memory")
    ax.legend(fontsize=7)


def _losses(ax: Axes, records: pd.DataFrame) -> None:
    x = records["iteration"]
    ax.plot(x, records["loss_main"], label="loss_main", linewidth=1)
    ax.plot(x, records["loss_replay"], label="replay term", linewidth=1)
    ax.set(ylabel="loss", title="loss and the replay term's share")
    share = ax.twinx()
    share.plot(x, records["replay_share"], color="black", linewidth=0.8, linestyle="--", label="replay share")
    share.set(ylim=(0, 1), ylabel="replay share of the loss")
    _legend(ax, share)


def _recall(ax: Axes, records: pd.DataFrame) -> None:
    x = records["iteration"]
    recalled = records["batch_r_norm"] > 0  # r is 0 with recall off (and on an empty memory): no log
    ax.plot(x[recalled], records["batch_r_norm"][recalled], label="mean ||r||" if recalled.any() else "r = 0")
    ax.plot(x, records["batch_z_norm"], label="mean ||z||")
    ax.set(yscale="log", ylabel="norm (log)", title="the decoder's input [z; r] on the training batch")
    agreement = ax.twinx()
    agreement.plot(x, records["batch_recall_agreement"], color="black", linewidth=0.8, linestyle="--",
                   label="recall weight on own class")  # fmt: skip
    agreement.set(ylim=(0, 1), ylabel="recall weight on the batch's own class")
    _legend(ax, agreement)


def _legend(ax: Axes, twin: Axes) -> None:
    """One legend for the lines of an axis and of its twin."""
    lines, labels = ax.get_legend_handles_labels()
    more_lines, more_labels = twin.get_legend_handles_labels()
    ax.legend(lines + more_lines, labels + more_labels, fontsize=7, loc="upper right")


def _reencoding(ax: Axes, ends: pd.DataFrame) -> None:
    own = ends[ends["probe_experience"] == ends["experience"]]
    accuracy = own.pivot(index="experience", columns="stage", values="accuracy")
    stages = [s for s in BARS if s in accuracy.columns]
    width = 0.8 / len(stages)
    positions = np.arange(len(accuracy))
    for k, stage in enumerate(stages):
        ax.bar(positions + (k - (len(stages) - 1) / 2) * width, accuracy[stage], width, label=BARS[stage])
    if "after_reencode" in accuracy.columns:
        cos = own[own["stage"] == "after_reencode"].set_index("experience")["r_shift_cos"]
        ax.plot(positions, cos.reindex(accuracy.index), "k^", label="cos(r before, r after)")
    ax.set_xticks(positions, [str(e + 1) for e in accuracy.index])
    ax.set(ylim=(0, 1.3), yticks=np.linspace(0, 1, 6), xlabel="experience ended")
    ax.set(ylabel="accuracy", title="just-trained experience, at its end")
    ax.legend(fontsize=6, loc="upper center", ncol=2, frameon=False)


def overview(d: Diagnosis, path: Path) -> Path:
    """Draw the six panels of ``d`` and save them as a PNG at ``path``."""
    fig = Figure(figsize=(14, 7.5), layout="constrained")
    axes = fig.subplots(2, 3)
    capacity = d.config.memory
    _stacked(axes[0, 0], d.composition, "class", "class", capacity)
    _stacked(axes[0, 1], d.composition, "origin", "exp", capacity)
    _salience(axes[0, 2], d.records)
    _losses(axes[1, 0], d.records)
    _recall(axes[1, 1], d.records)
    _reencoding(axes[1, 2], d.ends)
    for ax in (*axes[0], axes[1, 0], axes[1, 1]):
        _experience_ends(ax, d.ends)
        ax.set_xlabel("training iteration")
    options = ", ".join(f"{k}={v}" for k, v in d.config.strategy_options.items())
    title = f"EpiNet on {d.config.benchmark}, seed {d.config.seed}, validation split; options: {options}"
    fig.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize=10)
    save_small_png(fig, path)
    return path


def save_small_png(fig: Figure, path: Path, colours: int = 64) -> None:
    """Save as a palette PNG: a few dozen kB instead of ~150 kB of RGBA, for figures that are
    committed; ``colours`` palette entries keep the antialiased lines smooth."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    image = Image.open(buffer).convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
