"""Unit tests of dlbook.vision: the pad-and-crop layer, the augmentation pipeline, the ResNet builder."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dlbook import vision

def test_import_does_not_import_keras_or_tensorflow():
    code = "import sys, dlbook.vision; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_random_pad_crop_shifts_each_image_by_whole_pixels():
    import keras

    x = np.random.default_rng(1).integers(1, 255, size=(32, 12, 12, 3)).astype("float32")
    layer = vision.RandomPadCrop(2, seed=3)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert out.shape == x.shape
    shifts = set()
    for img, o in zip(x, out):
        padded = np.pad(img, ((2, 2), (2, 2), (0, 0)))
        found = [(r, c) for r in range(5) for c in range(5) if np.array_equal(padded[r:r + 12, c:c + 12], o)]
        assert found, "output is not a crop of the zero-padded input"
        shifts.add(found[0])
    assert len(shifts) > 1, "every image got the same crop"
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    config = layer.get_config()
    assert config["pad"] == 2 and config["seed"] == 3


def test_cifar_augmentation_is_identity_at_inference():
    import keras

    x = np.random.default_rng(2).uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")
    aug = vision.cifar_augmentation(rotation=0.05, zoom=0.1, translation=0.1, seed=1)
    names = [type(layer).__name__ for layer in aug.layers]
    assert names == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomPadCrop"]
    assert np.allclose(keras.ops.convert_to_numpy(aug(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(aug(x, training=True)), x)
    # flips and pad-crops compile with XLA; rotation, zoom and translation declare they do not
    assert all(layer.supports_jit for layer in vision.cifar_augmentation().layers)
    assert [layer.supports_jit for layer in aug.layers] == [True, False, False, False, True]
    plain = vision.cifar_augmentation(flip=False, pad=0)
    assert np.allclose(keras.ops.convert_to_numpy(plain(x, training=True)), x)


def test_small_resnet_shapes_and_parameter_count():
    import keras

    model = vision.small_resnet(widths=(8, 16), residual=(True, False), stem=4)
    assert model.output_shape == (None, 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    # stem 3->4, stage 4->8, block 8->8 twice, stage 8->16: 3x3 kernels, no biases
    assert [c.kernel.shape for c in convs] == [(3, 3, 3, 4), (3, 3, 4, 8), (3, 3, 8, 8), (3, 3, 8, 8), (3, 3, 8, 16)]
    conv_params = sum(9 * cin * cout for cin, cout in [(3, 4), (4, 8), (8, 8), (8, 8), (8, 16)])
    bn_params = 4 * (4 + 8 + 8 + 8 + 16)  # gamma, beta, moving mean, moving variance
    assert model.count_params() == conv_params + bn_params + (16 + 1) * 10  # Normalization: constants
    logits = keras.ops.convert_to_numpy(model(np.full((2, 32, 32, 3), 128, dtype="float32")))
    assert logits.shape == (2, 10) and np.all(np.isfinite(logits))
    with pytest.raises(ValueError):
        vision.small_resnet(widths=(8, 16), residual=(True,))
