"""A small MNIST classifier used as a judge of generated digits, and the
numbers it gives; chapter 5 (the GAN) teaches and uses it.

A generative model needs a number for sample quality, not only pictures:
chapter 5 scores real digits, an untrained generator and the trained GAN
with :func:`quality_report`, and its exercises build on :func:`build_judge`.
The judge is a small convnet trained on MNIST by :func:`load_or_train_judge` and
cached per profile under ``dlbook.data.cache_dir()/models/``. From its
predictions and its penultimate-layer features this module computes:

* :func:`label_entropy` and :func:`class_coverage`: how many digit classes the
  samples cover and how evenly (a collapsed generator covers few);
* :func:`mean_confidence`: how sure the judge is of its predicted class
  (a recognisable digit gets a confident prediction);
* :func:`frechet_distance` between Gaussians fitted to features of two image
  sets (:func:`gaussian_stats`): "FID with an MNIST classifier", the recipe of
  the Frechet Inception Distance with this judge in place of Inception-v3, so
  its values are not comparable with published FIDs.

The statistics are plain NumPy; only :func:`build_judge`,
:func:`load_or_train_judge` and :func:`judge_outputs` import Keras (lazily).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
import weakref
from pathlib import Path
from typing import Any

import numpy as np

JUDGE_VERSION = 1
"""Bumped whenever the judge's architecture or training recipe changes, so a
cached judge from an older recipe is never reused."""

FEATURES_LAYER = "features"
"""Name of the judge's penultimate (feature) layer."""


@dataclass(frozen=True)
class JudgeRecipe:
    """How much data and how many epochs the judge is trained with."""

    n_train: int | None
    epochs: int
    batch_size: int = 128


RECIPES: dict[str, JudgeRecipe] = {
    "smoke": JudgeRecipe(n_train=3000, epochs=2),
    "cpu": JudgeRecipe(n_train=None, epochs=2),
    "gpu": JudgeRecipe(n_train=None, epochs=6),
}
"""The judge's training recipe per profile."""


# --------------------------------------------------------------------------
# Pure statistics (NumPy only)


def label_histogram(labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Share of each class among integer ``labels`` (sums to 1)."""
    labels = np.asarray(labels).astype(int).ravel()
    if labels.size == 0:
        raise ValueError("no labels")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes})")
    return np.bincount(labels, minlength=n_classes) / labels.size


def label_entropy(labels: np.ndarray, n_classes: int = 10) -> float:
    """Entropy, in bits, of the distribution of predicted ``labels``.

    0 when every sample gets the same label; ``log2(n_classes)`` (3.32 bits for
    10 classes) when the labels are exactly balanced.
    """
    p = label_histogram(labels, n_classes)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum() + 0.0)


def class_coverage(labels: np.ndarray, n_classes: int = 10, min_share: float = 0.02) -> int:
    """Number of classes predicted for at least ``min_share`` of the samples.

    The default 2% is a fifth of a class's share under perfect balance, so a
    class counts as covered when it is clearly more than stray noise.
    """
    return int((label_histogram(labels, n_classes) >= min_share).sum())


def mean_confidence(probs: np.ndarray) -> float:
    """Mean over samples of the largest class probability (rows of ``probs``)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError("probs must have shape (n_samples, n_classes)")
    return float(probs.max(axis=1).mean())


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and covariance matrix (``ddof=1``) of rows of ``features``."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError("features must have shape (n >= 2, d)")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Squared Frechet (2-Wasserstein) distance between two Gaussians.

    ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^(1/2) S2 S1^(1/2))^(1/2))``, the
    formula of the FID. The matrix square roots are taken by symmetric
    eigendecomposition (negative round-off eigenvalues clipped to 0), which
    is stable for singular covariances and needs no SciPy.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError("means must be d-vectors and covariances d x d, alike for both")
    r1 = _psd_sqrt(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)
    return max(value, 0.0)


def frechet_distance_of(features1: np.ndarray, features2: np.ndarray) -> float:
    """:func:`frechet_distance` between Gaussians fitted to two feature sets."""
    return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))


def to_judge_input(images: np.ndarray) -> np.ndarray:
    """Images as the judge reads them: float32, shape ``(n, 28, 28, 1)``, values in [0, 1].

    Accepts ``uint8`` 0-255 images (as loaded), or floats in [-1, 1] (a tanh
    generator's output; detected by any negative value) or in [0, 1].
    """
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    else:
        x = x.astype(np.float32)
        if x.min() < 0:
            x = (x + 1.0) / 2.0
        x = np.clip(x, 0.0, 1.0)
    return x.reshape(-1, 28, 28, 1)


# --------------------------------------------------------------------------
# The judge itself (Keras, imported lazily)


def judge_path(profile: str) -> Path:
    """Where the judge for ``profile`` is cached."""
    from .data import cache_dir

    if profile not in RECIPES:
        raise ValueError(f"unknown profile {profile!r}")
    return cache_dir() / "models" / f"mnist_judge_v{JUDGE_VERSION}_{profile}.keras"


def build_judge() -> Any:
    """The judge: a small convnet whose penultimate layer is named ``features``."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(128, activation="relu", name=FEATURES_LAYER),
            layers.Dense(10, activation="softmax", name="probs"),
        ],
        name="mnist_judge",
    )


def load_or_train_judge(
    profile: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    retrain: bool = False,
) -> tuple[Any, bool]:
    """Load the cached judge for ``profile``, or train, cache and return it.

    Args:
        profile: a profile name; picks the recipe in :data:`RECIPES` and the
            cache file :func:`judge_path`.
        x_train: MNIST training images (``uint8``, shape ``(n, 28, 28)``).
        y_train: their labels.
        retrain: ignore a cached judge.

    Returns:
        ``(model, trained)``: the judge and whether it was trained just now.
    """
    import keras

    path = judge_path(profile)
    if path.exists() and not retrain:
        try:
            return keras.saving.load_model(path), False
        except Exception:  # corrupt or from another Keras version: train again
            pass
    recipe = RECIPES[profile]
    n = len(x_train) if recipe.n_train is None else min(recipe.n_train, len(x_train))
    model = build_judge()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        to_judge_input(x_train[:n]),
        np.asarray(y_train[:n]),
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        verbose=0,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return model, True


def judge_outputs(judge: Any, images: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The judge's class probabilities and penultimate features for ``images``.

    Returns ``(probs, features)`` as NumPy arrays of shapes ``(n, 10)`` and
    ``(n, 128)``.
    """
    both = _two_outputs(judge)
    probs, feats = both.predict(to_judge_input(images), batch_size=batch_size, verbose=0)
    return np.asarray(probs), np.asarray(feats)


_TWO_OUTPUTS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _two_outputs(judge: Any) -> Any:
    """The judge with its features as a second output, built once per judge (a
    new model would trace a new prediction function, a second or so each call)."""
    import keras

    if judge not in _TWO_OUTPUTS:
        _TWO_OUTPUTS[judge] = keras.Model(judge.inputs, [judge.outputs[0], judge.get_layer(FEATURES_LAYER).output])
    return _TWO_OUTPUTS[judge]


def quality_report(judge: Any, images: np.ndarray, reference_features: np.ndarray) -> dict[str, float]:
    """The judge's numbers for a set of images against real reference features.

    Returns a dict with ``coverage`` (classes, :func:`class_coverage`),
    ``entropy`` (bits, :func:`label_entropy`), ``confidence``
    (:func:`mean_confidence`) and ``fid`` (:func:`frechet_distance_of` between
    the images' features and ``reference_features``).
    """
    probs, feats = judge_outputs(judge, images)
    labels = probs.argmax(axis=1)
    return {
        "coverage": class_coverage(labels),
        "entropy": label_entropy(labels),
        "confidence": mean_confidence(probs),
        "fid": frechet_distance_of(feats, reference_features),
    }
