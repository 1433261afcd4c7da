"""The figure of one diagnosed run (``overview.png``), six panels over training iterations:

(a) memory by class and (b) by experience of origin, stacked areas; (c) decayed salience in
memory, median with 25-75 % and 5-95 % bands; (d) the loss: loss_main and the replay term, with
the replay term's share of the total; (e) what recall feeds the decoder on the training batch:
the recall weight on the batch's own class and cos(r, z); (f) at each experience end, accuracy
on the experience just trained after its last epoch, before and after re-encoding, with the
cosine between r before and after re-encoding for the same validation inputs.

Experiences are numbered from 1 here (the tables' ``experience`` columns count from 0). Dashed
verticals mark experience ends.
"""

from __future__ import annotations

import io
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
    ax.legend(fontsize=6, ncol=2, loc="lower left", framealpha=0.8)


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
    lines = ax.get_legend_handles_labels()
    more = share.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper right")


def _recall(ax: Axes, records: pd.DataFrame) -> None:
    x = records["iteration"]
    ax.plot(x, records["batch_recall_agreement"], label="recall weight on own class", linewidth=1)
    ax.plot(x, records["batch_r_z_cos"], label="cos(r, z)", linewidth=1)
    ax.set(ylim=(-0.05, 1.05), title="recall on the training batch")
    ax.legend(fontsize=7, loc="lower right")


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
    ax.set(ylim=(0, 1.05), xlabel="experience ended", title="just-trained experience (validation)")
    ax.legend(fontsize=6, loc="lower left", framealpha=0.8)


def overview(d: Diagnosis, path: Path) -> Path:
    """Draw the six panels of ``d`` and save them as a PNG at ``path``."""
    fig = Figure(figsize=(15, 8), layout="constrained")
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
    fig.suptitle(f"EpiNet on {d.config.benchmark}, seed {d.config.seed} (validation): {options}", fontsize=11)
    save_small_png(fig, path)
    return path


def save_small_png(fig: Figure, path: Path, colours: int = 96) -> None:
    """Save as a palette PNG: a few dozen kB instead of ~150 kB of RGBA, for figures that are
    committed; ``colours`` palette entries keep the antialiased lines smooth."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    image = Image.open(buffer).convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
