"""dlbook.images: image grids and the confusion-matrix heat map."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlbook import images, plots  # noqa: E402


def test_show_images_grid_titles_and_hidden_spares():
    imgs = np.random.default_rng(0).random((10, 28, 28))
    fig = images.show_images(imgs, suptitle="ten digits", titles=[str(i) for i in range(10)], ncols=4)
    assert len(fig.axes) == 12  # 3 rows of 4
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 10
    assert [ax.get_title() for ax in drawn] == [str(i) for i in range(10)]
    assert all(not ax.axison for ax in fig.axes)
    assert fig._suptitle.get_text() == "ten digits"
    assert plots.unlabelled_axes(fig) == []


def test_show_images_symmetric_scale_is_shared_and_centred():
    w = np.stack([np.full((4, 4), 0.5), np.full((4, 4), -2.0)])
    fig = images.show_images(w, suptitle="weights", symmetric=True, cmap="RdBu_r")
    for ax in fig.axes:
        assert ax.images[0].get_clim() == (-2.0, 2.0)


def test_show_images_accepts_rgb_and_single_channel():
    rgb = np.zeros((2, 5, 5, 3), dtype=np.uint8)
    one = np.zeros((2, 5, 5, 1))
    assert images.show_images(rgb, suptitle="rgb").axes[0].images[0].get_array().shape == (5, 5, 3)
    assert images.show_images(one, suptitle="grey").axes[0].images[0].get_array().shape == (5, 5)


@pytest.mark.parametrize("kwargs", [
    {"suptitle": ""},
    {"suptitle": "x", "titles": ["only one"]},
    {"suptitle": "x", "ncols": 0},
])
def test_show_images_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        images.show_images(np.zeros((2, 3, 3)), **kwargs)
    with pytest.raises(ValueError):
        images.show_images([], suptitle="nothing")


def test_plot_confusion_matrix_labels_and_counts():
    cm = np.array([[5, 1, 0], [0, 7, 2], [0, 0, 9]])
    ax = images.plot_confusion_matrix(cm, title="toy", class_names=["a", "b", "c"])
    assert ax.get_title() == "toy"
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(["5", "1", "7", "2", "9"])  # zeros are not written
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert plots.unlabelled_axes(ax.figure) == []


def test_plot_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError):
        images.plot_confusion_matrix(np.zeros((2, 3)), title="x")
    with pytest.raises(ValueError):
        images.plot_confusion_matrix(np.eye(2), title="x", class_names=["a"])
    with pytest.raises(ValueError):
        images.plot_confusion_matrix(np.eye(2), title=" ")
