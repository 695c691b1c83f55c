"""Figures made of images: galleries of examples, weights drawn as pictures,
and the confusion matrix as a heat map.

Like :mod:`dlbook.plots`, every helper here takes the figure's title as a
required argument, so no figure reaches a reader untitled.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .plots import label, require_labels


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
