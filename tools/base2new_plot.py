"""The base-to-new figure: Base, New and H per method, one panel per data set (and the average).

Drawn by ``parse_test_res.py --base2new OUTPUT --plot FILE``; matplotlib (in requirements.txt) is
imported only here, when a plot is asked for.
"""
import os

import numpy as np

METRICS = ("Base", "New", "H")


class PlotError(RuntimeError):
    """A plot that cannot be drawn here (parse_test_res.py prints it as its error line)."""


def _import_pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotError(
            "--plot needs matplotlib, which is not installed: `pip install -r requirements.txt` "
            "(or `bash scripts/install.sh`; the table above is complete)"
        ) from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def method_labels(blocks):
    """Short labels: the trainer folder when it tells the blocks apart, else the whole method path."""
    trainers = [b.method.split("/")[0] for b in blocks]
    return trainers if len(set(trainers)) == len(trainers) else [b.method for b in blocks]


def plot_base2new(blocks, path, keyword="accuracy"):
    """Write a PNG with one panel per data set: bars Base/New/H for each block, std over seeds as error bars."""
    plt = _import_pyplot()
    blocks = [b for b in blocks if b.rows]
    datasets = sorted({r.dataset for b in blocks for r in b.rows})
    panels = datasets + (["Average"] if len(datasets) > 1 else [])
    labels = method_labels(blocks)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 1.5, 3.4), squeeze=False)
    width = 0.8 / len(blocks)
    x = np.arange(len(METRICS))
    for ax, panel in zip(axes[0], panels):
        for i, (block, label) in enumerate(zip(blocks, labels)):
            rows = {r.dataset: r for r in block.rows}
            row = block.average() if panel == "Average" else rows.get(panel)
            if row is None:
                continue
            stds = None if panel == "Average" else row.stds  # the average has no per-seed spread
            ax.bar(x + (i - (len(blocks) - 1) / 2) * width, (row.base, row.new, row.h), width, yerr=stds,
                   capsize=2, label=label)
        ax.set_title(panel)
        ax.set_xticks(x)
        ax.set_xticklabels(METRICS)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"{keyword} (%)")
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
