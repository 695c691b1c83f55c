"""Generative models' data and figures, taught in chapter 6 (the VAE).

Chapter 6 binarises MNIST for its Bernoulli decoder (:func:`binarise`), decodes
a grid of points of its 2-D latent space (:func:`latent_grid`,
:func:`show_latent_grid`), walks the path between two codes
(:func:`linear_path`) and draws inputs above their reconstructions
(:func:`show_image_rows`, :func:`tile_images`); the chapter writes its
encoder, decoder and loss in its own cells and calls these for the rest. Plain
NumPy and matplotlib: nothing here imports Keras.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .plots import label, require_labels


def binarise(
    images: np.ndarray,
    *,
    method: str = "stochastic",
    seed: int = 0,
    threshold: float = 0.5,
) -> np.ndarray:
    """Turn grey-level images into 0/1 images with a trailing channel axis.

    Args:
        images: ``(n, h, w)`` grey levels, ``uint8`` 0-255 or floats in [0, 1].
        method: ``"stochastic"``: pixel is 1 with probability equal to its
            intensity (one draw, reproducible from ``seed``); ``"threshold"``:
            pixel is 1 where its intensity exceeds ``threshold``.
        seed: seed of the stochastic draw (the same seed gives the same images).
        threshold: the cut for ``method="threshold"``, in [0, 1].

    Returns:
        ``float32`` array ``(n, h, w, 1)`` of zeros and ones.

    Raises:
        ValueError: for an unknown method or intensities outside [0, 1].
    """
    x = np.asarray(images)
    p = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError("intensities must lie in [0, 1] (or be uint8 0-255)")
    if method == "stochastic":
        bits = np.random.default_rng(seed).random(p.shape, dtype=np.float32) < p
    elif method == "threshold":
        bits = p > threshold
    else:
        raise ValueError(f"unknown method {method!r}: use 'stochastic' or 'threshold'")
    return bits.astype(np.float32)[..., None]


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


def latent_grid(n: int, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Points of an ``n`` x ``n`` grid on ``[-limit, limit]^2`` in a 2-D latent space.

    Returns ``(points, values)``: ``points`` has shape ``(n*n, 2)`` and is
    ordered as an image reads, top row first: ``z2`` falls from ``+limit``
    row by row and ``z1`` rises from ``-limit`` along each row, so decoding
    the points and tiling them with :func:`tile_images` (``ncols=n``) gives a
    picture whose axes are ``z1`` (right) and ``z2`` (up). ``values`` are the
    ``n`` coordinates used on each axis, increasing.
    """
    if n < 2 or limit <= 0:
        raise ValueError("need n >= 2 and limit > 0")
    values = np.linspace(-limit, limit, n)
    z1, z2 = np.meshgrid(values, values[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32), values


def linear_path(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points evenly spaced on the segment from ``a`` to ``b`` (both ends included)."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if a.shape != b.shape or steps < 2:
        raise ValueError("a and b need one shape, and steps >= 2")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32).reshape((steps,) + (1,) * a.ndim)
    return (1 - t) * a + t * b


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
