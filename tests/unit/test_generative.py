"""dlbook.generative: binarised images, tiles, latent grids and paths, and their figures."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlbook import generative, plots  # noqa: E402


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


def test_tile_images_layout_and_padding():
    ims = np.stack([np.full((2, 3), float(i)) for i in range(5)])
    t = generative.tile_images(ims, ncols=2, pad=1, pad_value=-1)
    assert t.shape == (3 * 2 + 2, 2 * 3 + 1)
    assert t[0, 0] == 0 and t[0, 4] == 1 and t[3, 0] == 2 and t[6, 0] == 4
    assert t[2, 0] == -1  # padding row
    assert np.all(t[6:, 4:] == -1)  # the missing sixth image
    assert generative.tile_images(ims[..., None], 5, pad=0).shape == (2, 15)
    with pytest.raises(ValueError):
        generative.tile_images(np.zeros((3, 3)), 2)


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


def test_show_image_rows_and_latent_grid_have_titles():
    rows = {"input": np.zeros((6, 8, 8)), "reconstruction": np.ones((6, 8, 8, 1))}
    fig = generative.show_image_rows(rows, title="inputs and reconstructions")
    assert fig._suptitle.get_text() == "inputs and reconstructions"
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["input", "reconstruction"]
    assert plots.unlabelled_axes(fig) == []
    pts, values = generative.latent_grid(4, 1.5)
    ax = generative.show_latent_grid(np.zeros((16, 8, 8)), values, title="decoded plane")
    assert ax.get_xlabel() == "latent coordinate z1" and ax.get_title() == "decoded plane"
    assert ax.images[0].get_extent() == pytest.approx([-2.0, 2.0, -2.0, 2.0])
    assert plots.unlabelled_axes(ax.figure) == []
    with pytest.raises(ValueError):
        generative.show_latent_grid(np.zeros((15, 8, 8)), values, title="x")
    with pytest.raises(ValueError):
        generative.show_image_rows(rows, title=" ")
