"""One plotting style for the whole book, and every figure helper chapters share.

Every figure a reader sees has a title, labelled axes and units; the helpers
here take those as required arguments so a chapter cannot forget them
(:func:`require_labels` is the one check behind them all).

* Curves: :func:`label`, :func:`plot_curves`, :func:`unlabelled_axes`.
* Images: galleries of examples and weights drawn as pictures
  (:func:`show_images`), rows of images such as inputs above their
  reconstructions (:func:`show_image_rows`), images decoded on a latent grid
  (:func:`show_latent_grid`), and the array that tiles them (:func:`tile_images`).
* The confusion matrix as a heat map (:func:`plot_confusion_matrix`).
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


def show_images(
    images: np.ndarray | Sequence[np.ndarray],
    *,
    suptitle: str,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "gray_r",
    symmetric: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
    size: float = 1.15,
):
    """Draw images in a grid, each with an optional title, under one suptitle.

    Args:
        images: ``n`` images, each ``(h, w)`` (drawn with ``cmap``) or
            ``(h, w, 3)`` (RGB); an array ``(n, h, w[, 3])`` or a list.
        suptitle: the figure's title (required, non-empty).
        titles: one short title per image, or None.
        ncols: images per row (fewer if there are fewer images).
        cmap: colour map for single-channel images (``"gray_r"``: dark ink on
            white, as digits are written).
        symmetric: one colour scale for all images, centred on zero
            (``[-m, m]`` with ``m`` the largest absolute value) - the right
            choice for weights, whose sign matters; use a diverging ``cmap``
            such as ``"RdBu_r"``.
        vmin, vmax: a fixed colour scale shared by all images (overrides
            ``symmetric``); by default each image is scaled on its own.
        size: width and height of one image, in inches.

    Returns:
        The matplotlib figure. Unused grid cells are hidden.

    Raises:
        ValueError: on an empty ``suptitle``, no images, or a ``titles`` list
            of the wrong length.
    """
    import matplotlib.pyplot as plt

    require_labels(title=suptitle)
    images = [np.asarray(im) for im in images]
    if not images:
        raise ValueError("no images to show")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    if ncols < 1:
        raise ValueError("ncols must be at least 1")
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    if vmin is None and vmax is None and symmetric:
        m = max(float(np.max(np.abs(im))) for im in images) or 1.0
        vmin, vmax = -m, m
    title_space = 0.3 if titles is not None else 0.0
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * size, nrows * (size + title_space) + 0.45), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        im = images[i]
        if im.ndim == 3 and im.shape[-1] == 1:
            im = im[..., 0]
        ax.imshow(im, cmap=None if im.ndim == 3 else cmap, vmin=vmin, vmax=vmax,
                  interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.suptitle(suptitle)
    return fig


def plot_confusion_matrix(
    cm: np.ndarray,
    *,
    title: str,
    class_names: Sequence[str] | None = None,
    ax=None,
    annotate: bool = True,
):
    """Draw a confusion matrix (rows: true class, columns: predicted class).

    Colours show each row's counts as a share of that row (the recall view),
    on a logarithmic scale so that the rare confusions stay visible beside
    the large diagonal; the numbers written in the cells are the raw counts.

    Args:
        cm: square count matrix, as from :func:`dlbook.metrics.confusion_matrix`.
        title: the axes title (required).
        class_names: tick labels; default ``0 .. K-1``.
        ax: axes to draw on; a new figure if None.
        annotate: write the count in every non-zero cell.

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    require_labels(title=title)
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {cm.shape}")
    k = cm.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} classes")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * k + 1.6, 0.45 * k + 1.2))
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    floor = 1e-3
    ax.imshow(np.maximum(share, floor), cmap="Blues", norm=LogNorm(vmin=floor, vmax=1.0))
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    ax.grid(False)
    if annotate:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.3 else "black")
    label(ax, title=title, xlabel="predicted class", ylabel="true class")
    return ax


def tile_images(images: np.ndarray, ncols: int, *, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``n`` images ``(h, w)`` or ``(h, w, 1)`` into one 2-D array, row by row.

    Images fill rows of ``ncols`` from the top left; a last row that is not
    full is padded with ``pad_value``, as are the ``pad`` pixels between images.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"expected n images of shape (h, w), got array of shape {x.shape}")
    if ncols < 1:
        raise ValueError("ncols must be at least 1")
    n, h, w = x.shape
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), pad_value, dtype=np.float32)
    for i, im in enumerate(x):
        r, c = divmod(i, ncols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = im
    return out


def show_image_rows(rows: Mapping[str, np.ndarray], *, title: str, size: float = 0.9, cmap: str = "gray_r"):
    """Draw several rows of images, one named row each (inputs above their
    reconstructions, say), with one colour scale [0, 1] for all.

    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    require_labels(title=title)
    if not rows:
        raise ValueError("no rows to show")
    ncols = max(len(r) for r in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(ncols * size + 1.2, len(rows) * size + 0.5), squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], rows.items()):
        ax.imshow(tile_images(images, ncols, pad=2, pad_value=0.0), cmap=cmap, vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_axis_off()
        ax.text(-0.01, 0.5, name, transform=ax.transAxes, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    return fig


def show_latent_grid(decoded: np.ndarray, values: np.ndarray, *, title: str, ax=None, cmap: str = "gray_r"):
    """Draw images decoded at :func:`latent_grid` points as one picture whose
    axes are the latent coordinates ``z1`` and ``z2``.

    Args:
        decoded: ``(n*n, h, w[, 1])`` images, in :func:`latent_grid` order.
        values: the ``n`` grid coordinates :func:`latent_grid` returned.
        title: the axes title (required).

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    n = len(values)
    if len(decoded) != n * n:
        raise ValueError(f"{len(decoded)} images for a {n} x {n} grid")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    step = (values[-1] - values[0]) / (n - 1)
    extent = (values[0] - step / 2, values[-1] + step / 2, values[0] - step / 2, values[-1] + step / 2)
    ax.imshow(tile_images(decoded, n, pad=0), cmap=cmap, vmin=0, vmax=1, extent=extent,
              interpolation="nearest")
    ax.grid(False)
    label(ax, title=title, xlabel="latent coordinate z1", ylabel="latent coordinate z2")
    return ax
