"""dlbook.plots: the book's style, the labels every figure needs, curves, figures
of images and the confusion-matrix heat map."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlbook import generative, plots  # noqa: E402


def test_label_requires_all_texts():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="title"):
        plots.label(ax, title="", xlabel="x", ylabel="y")
    plots.label(ax, title="t", xlabel="x (units)", ylabel="y (units)")
    assert plots.unlabelled_axes(fig) == []
    plt.close(fig)


def test_require_labels_names_the_first_empty_text():
    plots.require_labels(title="t", xlabel="x (units)")
    for texts, missing in [({"title": ""}, "title"), ({"title": "t", "ylabel": "  "}, "ylabel"),
                           ({"title": None}, "title")]:
        with pytest.raises(ValueError, match=f"every figure needs a {missing}"):
            plots.require_labels(**texts)


def test_plot_curves_and_unlabelled_axes():
    fig, (a, b) = plt.subplots(1, 2)
    plots.plot_curves([0, 1], {"a": [0, 1], "b": [1, 0]}, title="t", xlabel="x", ylabel="y", ax=a, logy=False)
    assert a.get_legend() is not None
    assert plots.unlabelled_axes(fig) == ["axes 1: no title", "axes 1: no x label", "axes 1: no y label"]
    plt.close(fig)


def test_use_book_style_sets_rcparams():
    plots.use_book_style()
    assert matplotlib.rcParams["axes.grid"] is True


def test_show_images_grid_titles_and_hidden_spares():
    imgs = np.random.default_rng(0).random((10, 28, 28))
    fig = plots.show_images(imgs, suptitle="ten digits", titles=[str(i) for i in range(10)], ncols=4)
    assert len(fig.axes) == 12  # 3 rows of 4
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 10
    assert [ax.get_title() for ax in drawn] == [str(i) for i in range(10)]
    assert all(not ax.axison for ax in fig.axes)
    assert fig._suptitle.get_text() == "ten digits"
    assert plots.unlabelled_axes(fig) == []


def test_show_images_symmetric_scale_is_shared_and_centred():
    w = np.stack([np.full((4, 4), 0.5), np.full((4, 4), -2.0)])
    fig = plots.show_images(w, suptitle="weights", symmetric=True, cmap="RdBu_r")
    for ax in fig.axes:
        assert ax.images[0].get_clim() == (-2.0, 2.0)


def test_show_images_accepts_rgb_and_single_channel():
    rgb = np.zeros((2, 5, 5, 3), dtype=np.uint8)
    one = np.zeros((2, 5, 5, 1))
    assert plots.show_images(rgb, suptitle="rgb").axes[0].images[0].get_array().shape == (5, 5, 3)
    assert plots.show_images(one, suptitle="grey").axes[0].images[0].get_array().shape == (5, 5)


@pytest.mark.parametrize("kwargs", [
    {"suptitle": ""},
    {"suptitle": "x", "titles": ["only one"]},
    {"suptitle": "x", "ncols": 0},
])
def test_show_images_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        plots.show_images(np.zeros((2, 3, 3)), **kwargs)
    with pytest.raises(ValueError):
        plots.show_images([], suptitle="nothing")


def test_plot_confusion_matrix_labels_and_counts():
    cm = np.array([[5, 1, 0], [0, 7, 2], [0, 0, 9]])
    ax = plots.plot_confusion_matrix(cm, title="toy", class_names=["a", "b", "c"])
    assert ax.get_title() == "toy"
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(["5", "1", "7", "2", "9"])  # zeros are not written
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert plots.unlabelled_axes(ax.figure) == []


def test_plot_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError):
        plots.plot_confusion_matrix(np.zeros((2, 3)), title="x")
    with pytest.raises(ValueError):
        plots.plot_confusion_matrix(np.eye(2), title="x", class_names=["a"])
    with pytest.raises(ValueError):
        plots.plot_confusion_matrix(np.eye(2), title=" ")


def test_tile_images_layout_and_padding():
    ims = np.stack([np.full((2, 3), float(i)) for i in range(5)])
    t = plots.tile_images(ims, ncols=2, pad=1, pad_value=-1)
    assert t.shape == (3 * 2 + 2, 2 * 3 + 1)
    assert t[0, 0] == 0 and t[0, 4] == 1 and t[3, 0] == 2 and t[6, 0] == 4
    assert t[2, 0] == -1  # padding row
    assert np.all(t[6:, 4:] == -1)  # the missing sixth image
    assert plots.tile_images(ims[..., None], 5, pad=0).shape == (2, 15)
    with pytest.raises(ValueError):
        plots.tile_images(np.zeros((3, 3)), 2)


def test_show_image_rows_and_latent_grid_have_titles():
    rows = {"input": np.zeros((6, 8, 8)), "reconstruction": np.ones((6, 8, 8, 1))}
    fig = plots.show_image_rows(rows, title="inputs and reconstructions")
    assert fig._suptitle.get_text() == "inputs and reconstructions"
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["input", "reconstruction"]
    assert plots.unlabelled_axes(fig) == []
    pts, values = generative.latent_grid(4, 1.5)
    ax = plots.show_latent_grid(np.zeros((16, 8, 8)), values, title="decoded plane")
    assert ax.get_xlabel() == "latent coordinate z1" and ax.get_title() == "decoded plane"
    assert ax.images[0].get_extent() == pytest.approx([-2.0, 2.0, -2.0, 2.0])
    assert plots.unlabelled_axes(ax.figure) == []
    with pytest.raises(ValueError):
        plots.show_latent_grid(np.zeros((15, 8, 8)), values, title="x")
    with pytest.raises(ValueError):
        plots.show_image_rows(rows, title=" ")
