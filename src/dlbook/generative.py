"""Generative models' data, taught in chapter 6 (the VAE).

Chapter 6 binarises MNIST for its Bernoulli decoder (:func:`binarise`), decodes
a grid of points of its 2-D latent space (:func:`latent_grid`) and walks the
path between two codes (:func:`linear_path`); the chapter writes its encoder,
decoder and loss in its own cells. Its figures (images in rows, the decoded
latent plane, tiles) are drawn by :mod:`dlbook.plots`. Plain NumPy: nothing
here imports Keras or matplotlib.
"""

from __future__ import annotations

import numpy as np


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


def latent_grid(n: int, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Points of an ``n`` x ``n`` grid on ``[-limit, limit]^2`` in a 2-D latent space.

    Returns ``(points, values)``: ``points`` has shape ``(n*n, 2)`` and is
    ordered as an image reads, top row first: ``z2`` falls from ``+limit``
    row by row and ``z1`` rises from ``-limit`` along each row, so decoding
    the points and tiling them with :func:`dlbook.plots.tile_images` (``ncols=n``) gives a
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
