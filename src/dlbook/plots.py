"""One plotting style for the whole book, and the helpers chapters share.

Every figure a reader sees has a title, labelled axes and units; the helpers
here take those as required arguments so a chapter cannot forget them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

BOOK_STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 120,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "image.cmap": "viridis",
}


def use_book_style() -> None:
    """Apply the book's matplotlib style (called by :func:`dlbook.setup`)."""
    import matplotlib as mpl

    mpl.rcParams.update(BOOK_STYLE)


def require_labels(**texts: str) -> None:
    """Check a figure's texts before drawing it: each must be non-empty.

    The one check behind every figure helper of the book
    (``require_labels(title=title, xlabel=xlabel, ylabel=ylabel)``, or
    ``require_labels(title=suptitle)`` for a figure of images).

    Raises:
        ValueError: "every figure needs a <name>", for the first empty (or blank) one.
    """
    for what, text in texts.items():
        if not text or not str(text).strip():
            raise ValueError(f"every figure needs a {what}")


def label(ax, *, title: str, xlabel: str, ylabel: str):
    """Give an axes its title and axis labels; each must be non-empty."""
    require_labels(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def plot_curves(
    x: Sequence[float] | np.ndarray,
    curves: Mapping[str, Sequence[float] | np.ndarray],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    ax=None,
    logy: bool = False,
    styles: Mapping[str, str] | None = None,
):
    """Plot several named curves against one x axis, with a legend.

    Returns the axes, so a chapter can add annotations.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    for name, y in curves.items():
        style = (styles or {}).get(name, "-")
        ax.plot(x, y, style, label=name)
    if logy:
        ax.set_yscale("log")
    label(ax, title=title, xlabel=xlabel, ylabel=ylabel)
    if len(curves) > 1:
        ax.legend()
    return ax


def unlabelled_axes(fig) -> list[str]:
    """Names of the axes of ``fig`` missing a title or an axis label.

    Axes that show images (with axis lines switched off) are exempt from axis
    labels but not from a title on the figure or the axes.
    """
    problems = []
    for i, ax in enumerate(fig.axes):
        if not ax.axison:
            continue
        if not ax.get_title() and not (fig._suptitle and fig._suptitle.get_text()):
            problems.append(f"axes {i}: no title")
        if not ax.get_xlabel():
            problems.append(f"axes {i}: no x label")
        if not ax.get_ylabel():
            problems.append(f"axes {i}: no y label")
    return problems
