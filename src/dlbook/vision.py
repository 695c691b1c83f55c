"""Keras pieces for image classifiers: augmentation and a small ResNet.

What lives here: a per-image random pad-and-crop layer, the CIFAR-10
augmentation pipeline built from Keras 3 preprocessing layers, and a small
ResNet-style builder. Chapter 4 teaches them (it prints the builder's source);
later chapters import them. Figures of images and confusion matrices are in
:mod:`dlbook.plots`, the counts behind them in :mod:`dlbook.metrics`.

Nothing here imports Keras at module import time: the builders import it when
called, so ``import dlbook.vision`` works without a backend.
"""

from __future__ import annotations

from typing import Any, Sequence

_LAYER_CLASSES: dict[str, type] = {}


def _random_pad_crop_class() -> type:
    """Define (once) the Keras layer class behind :func:`RandomPadCrop`."""
    if "RandomPadCrop" in _LAYER_CLASSES:
        return _LAYER_CLASSES["RandomPadCrop"]
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="dlbook")
    class RandomPadCrop(keras.layers.Layer):
        """Pad each image by ``pad`` zero pixels, then crop it back at a random
        place of its own; the identity at inference."""

        def __init__(self, pad: int = 4, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.pad = int(pad)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=None):
            if not training or self.pad == 0:
                return images
            p = self.pad
            h, w = images.shape[1], images.shape[2]
            batch = ops.shape(images)[0]
            padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
            offsets = keras.random.randint((batch, 2), 0, 2 * p + 1, seed=self.seed_generator)
            rows = offsets[:, 0:1] + ops.arange(h, dtype="int32")[None, :]  # (batch, h)
            cols = offsets[:, 1:2] + ops.arange(w, dtype="int32")[None, :]  # (batch, w)
            c = ops.shape(padded)[3]
            rows = ops.broadcast_to(rows[:, :, None, None], (batch, h, w + 2 * p, c))
            out = ops.take_along_axis(padded, rows, axis=1)
            cols = ops.broadcast_to(cols[:, None, :, None], (batch, h, w, c))
            return ops.take_along_axis(out, cols, axis=2)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self) -> dict:
            return {**super().get_config(), "pad": self.pad, "seed": self.seed}

    _LAYER_CLASSES["RandomPadCrop"] = RandomPadCrop
    return RandomPadCrop


def RandomPadCrop(pad: int = 4, seed: int | None = None, **kwargs: Any):  # noqa: N802 - a layer
    """A Keras layer: random crop with zero padding, a new place for every image.

    In training each image is padded by ``pad`` pixels of zeros on every side
    and a window of the original size is cut out at a random offset, i.e. it is
    shifted by a whole number of pixels in ``[-pad, pad]`` in each direction.
    At inference the layer returns its input unchanged. (``keras.layers.RandomCrop``
    crops every image of a batch at the same place, and at inference returns a
    padded input still padded.)
    """
    return _random_pad_crop_class()(pad=pad, seed=seed, **kwargs)


def cifar_augmentation(
    *,
    flip: bool = True,
    pad: int = 4,
    rotation: float = 0.0,
    zoom: float = 0.0,
    translation: float = 0.0,
    fill_mode: str = "reflect",
    seed: int | None = None,
    name: str = "augment",
):
    """The augmentation pipeline as one Keras layer (a ``Sequential``).

    Args:
        flip: random left-right flips.
        pad: random crop with this much zero padding (0: none).
        rotation: random rotation, as a fraction of a full turn (0.1 = +-36 degrees).
        zoom: random zoom in or out by up to this fraction.
        translation: random shifts by up to this fraction of the size (besides ``pad``).
        fill_mode: how rotation, zoom and translation fill pixels from outside the
            image (``"reflect"``, ``"nearest"``, ``"constant"``, ``"wrap"``).
        seed: seed of the random transformations.

    Every layer is active only in training (``model.fit``); at inference the
    pipeline passes images through unchanged.
    """
    import keras

    from keras import layers

    stack = []
    if flip:
        stack.append(layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        stack.append(layers.RandomRotation(rotation, fill_mode=fill_mode, seed=seed))
    if zoom:
        stack.append(layers.RandomZoom(zoom, fill_mode=fill_mode, seed=seed))
    if translation:
        stack.append(layers.RandomTranslation(translation, translation, fill_mode=fill_mode, seed=seed))
    if pad:
        stack.append(RandomPadCrop(pad, seed=seed))
    if not stack:
        stack.append(layers.Identity())
    return keras.Sequential(stack, name=name)


def small_resnet(
    *,
    widths: Sequence[int] = (32, 64, 128),
    residual: Sequence[bool] = (True, True, True),
    stem: int = 0,
    n_classes: int = 10,
    mean: Sequence[float] = (125.3, 123.0, 113.9),
    std: Sequence[float] = (63.0, 62.1, 66.7),
    bn_momentum: float = 0.9,
    name: str = "small_resnet",
):
    """A ResNet-style classifier for 32x32 RGB images with values 0-255.

    The input is standardised per channel (``mean``/``std``, on the 0-255
    scale). An optional ``stem`` convolution works at full resolution; then each
    stage is conv-BN-ReLU with ``widths[i]`` channels and a 2x2 max-pool, followed,
    where ``residual[i]`` is true, by a residual block of two conv-BN-ReLU layers
    whose output is added to its input. Global average pooling and one Dense
    layer give ``n_classes`` logits (no softmax: train with ``from_logits=True``).

    ``stem=64, widths=(128, 256, 512), residual=(True, False, True)`` is the
    "ResNet-9" of the DAWNBench CIFAR-10 entries; the defaults are a small one
    for CPUs.
    """
    import keras

    from keras import layers

    if len(widths) != len(residual):
        raise ValueError("one residual flag per stage")

    def conv_bn(x, channels):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
        return layers.ReLU()(x)

    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Normalization(mean=list(mean), variance=[s * s for s in std])(inputs)
    if stem:
        x = conv_bn(x, stem)
    for channels, has_block in zip(widths, residual):
        x = conv_bn(x, channels)
        x = layers.MaxPooling2D()(x)
        if has_block:
            x = layers.add([x, conv_bn(conv_bn(x, channels), channels)])
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(n_classes, dtype="float32")(x)  # float32 logits under mixed precision
    return keras.Model(inputs, outputs, name=name)
