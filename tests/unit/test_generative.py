"""dlbook.generative: binarised images, latent grids and paths (their figures: test_plots.py)."""

import numpy as np
import pytest

from dlbook import generative


def test_binarise_threshold_is_exact_and_adds_a_channel():
    x = np.array([[[0, 127, 128, 255]]], dtype=np.uint8)
    b = generative.binarise(x, method="threshold")
    assert b.shape == (1, 1, 4, 1) and b.dtype == np.float32
    assert b[0, 0, :, 0].tolist() == [0.0, 0.0, 1.0, 1.0]


def test_binarise_stochastic_is_reproducible_and_unbiased():
    x = np.full((200, 28, 28), 0.3, dtype=np.float32)
    a = generative.binarise(x, seed=7)
    assert np.array_equal(a, generative.binarise(x, seed=7))
    assert not np.array_equal(a, generative.binarise(x, seed=8))
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert abs(a.mean() - 0.3) < 0.005  # 156,800 Bernoulli(0.3) draws
    ends = generative.binarise(np.array([[[0, 255]]], dtype=np.uint8), seed=1)
    assert ends[0, 0, :, 0].tolist() == [0.0, 1.0]  # black stays 0, white stays 1


@pytest.mark.parametrize("kwargs", [{"method": "dither"}])
def test_binarise_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        generative.binarise(np.zeros((1, 2, 2)), **kwargs)
    with pytest.raises(ValueError):
        generative.binarise(np.full((1, 2, 2), 2.0))


def test_latent_grid_reads_like_an_image():
    pts, values = generative.latent_grid(3, 2.0)
    assert pts.shape == (9, 2) and values.tolist() == [-2.0, 0.0, 2.0]
    assert pts[0].tolist() == [-2.0, 2.0]  # top left: z1 smallest, z2 largest
    assert pts[2].tolist() == [2.0, 2.0]  # top right
    assert pts[-1].tolist() == [2.0, -2.0]  # bottom right
    with pytest.raises(ValueError):
        generative.latent_grid(1, 1.0)


def test_linear_path_includes_both_ends():
    a, b = np.zeros(4), np.arange(4.0)
    p = generative.linear_path(a, b, 5)
    assert p.shape == (5, 4)
    assert np.allclose(p[0], a) and np.allclose(p[-1], b) and np.allclose(p[2], b / 2)
    with pytest.raises(ValueError):
        generative.linear_path(a, np.zeros(3), 5)
