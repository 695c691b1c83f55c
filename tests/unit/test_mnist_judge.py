"""The MNIST judge's statistics: closed forms, invariances, and the cache layout."""

import subprocess
import sys

import numpy as np
import pytest

from dlbook import mnist_judge as mj


def random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


# -- Frechet distance ----------------------------------------------------------


def test_frechet_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    mu, s = rng.normal(size=6), random_spd(6, rng)
    assert mj.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_frechet_one_dimensional_closed_form():
    # For 1-D Gaussians: (m1 - m2)^2 + (sd1 - sd2)^2.
    d = mj.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert d == pytest.approx(3.0**2 + (2.0 - 3.0) ** 2)


def test_frechet_diagonal_closed_form():
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, -2.0])
    expected = 1.0 + 4.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert mj.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_frechet_mean_shift_only():
    rng = np.random.default_rng(1)
    s = random_spd(5, rng)
    shift = rng.normal(size=5)
    assert mj.frechet_distance(np.zeros(5), s, shift, s) == pytest.approx(float(shift @ shift), rel=1e-7)


def test_frechet_symmetric_and_matches_scipy():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = random_spd(8, rng), random_spd(8, rng)
    d12 = mj.frechet_distance(mu1, s1, mu2, s2)
    assert d12 == pytest.approx(mj.frechet_distance(mu2, s2, mu1, s1), rel=1e-9)
    linalg = pytest.importorskip("scipy.linalg")
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert d12 == pytest.approx(ref, rel=1e-7)


def test_frechet_handles_singular_covariances():
    # Rank-1 covariances (fewer samples than dimensions): finite, non-negative, 0 for equal inputs.
    v = np.array([[1.0, 2.0, 0.0]])
    s = v.T @ v
    assert mj.frechet_distance(np.zeros(3), s, np.zeros(3), s) == pytest.approx(0.0, abs=1e-7)
    assert np.isfinite(mj.frechet_distance(np.zeros(3), s, np.ones(3), np.eye(3)))


def test_frechet_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        mj.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_frechet_of_samples_approaches_the_gaussians_distance():
    rng = np.random.default_rng(3)
    f1 = rng.normal(size=(20000, 2))
    f2 = rng.normal(loc=[3.0, 0.0], scale=[1.0, 2.0], size=(20000, 2))
    # Exact: 3^2 + (1 - 2)^2 = 10.
    assert mj.frechet_distance_of(f1, f2) == pytest.approx(10.0, rel=0.03)
    assert mj.frechet_distance_of(f1, f1) == pytest.approx(0.0, abs=1e-8)


def test_gaussian_stats_shapes_and_values():
    f = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    mu, s = mj.gaussian_stats(f)
    assert np.allclose(mu, [2.0, 3.0])
    assert np.allclose(s, [[4.0, 4.0], [4.0, 4.0]])
    with pytest.raises(ValueError):
        mj.gaussian_stats(np.ones((1, 3)))


# -- labels and confidence ---------------------------------------------------------


def test_label_entropy_extremes():
    assert mj.label_entropy(np.repeat(np.arange(10), 7)) == pytest.approx(np.log2(10))
    assert mj.label_entropy(np.full(50, 3)) == 0.0
    assert mj.label_entropy(np.array([0, 1])) == pytest.approx(1.0)


def test_label_histogram_validates():
    assert np.allclose(mj.label_histogram(np.array([0, 0, 2, 2]), 4), [0.5, 0, 0.5, 0])
    with pytest.raises(ValueError):
        mj.label_histogram(np.array([10]))
    with pytest.raises(ValueError):
        mj.label_histogram(np.array([], dtype=int))


def test_class_coverage_counts_classes_above_the_share():
    labels = np.array([0] * 90 + [1] * 5 + [2] * 4 + [3])  # shares 0.90, 0.05, 0.04, 0.01
    assert mj.class_coverage(labels) == 3
    assert mj.class_coverage(labels, min_share=0.045) == 2
    assert mj.class_coverage(np.repeat(np.arange(10), 3)) == 10


def test_mean_confidence():
    probs = np.array([[0.9, 0.1], [0.4, 0.6]])
    assert mj.mean_confidence(probs) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        mj.mean_confidence(np.array([0.5, 0.5]))


def test_to_judge_input_ranges():
    u8 = np.array([[0, 255]], dtype=np.uint8).repeat(392, axis=0).reshape(1, 28, 28)
    tanh = np.full((2, 28, 28, 1), -1.0, np.float32)
    tanh[0, 0, 0, 0] = 1.0
    out_u8, out_tanh = mj.to_judge_input(u8), mj.to_judge_input(tanh)
    assert out_u8.shape == (1, 28, 28, 1) and out_u8.dtype == np.float32
    assert out_u8.min() == 0.0 and out_u8.max() == 1.0
    assert out_tanh.shape == (2, 28, 28, 1) and out_tanh.min() == 0.0 and out_tanh.max() == 1.0
    unit = np.full((1, 28, 28), 0.5, np.float32)
    assert np.allclose(mj.to_judge_input(unit), 0.5)


# -- cache layout and laziness ---------------------------------------------------


def test_judge_path_is_keyed_by_profile_under_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA_DIR", str(tmp_path))
    paths = {p: mj.judge_path(p) for p in ("smoke", "cpu", "gpu")}
    assert len(set(paths.values())) == 3
    for name, path in paths.items():
        assert path.parent == tmp_path / "models"
        assert name in path.name and path.suffix == ".keras"
    with pytest.raises(ValueError):
        mj.judge_path("tpu")


def test_recipes_cover_every_profile():
    from dlbook.profiles import PROFILES

    assert set(mj.RECIPES) == set(PROFILES)


def test_module_imports_without_keras():
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "import dlbook.mnist_judge as m\n"
        "assert m.frechet_distance_of([[0.0], [1.0]], [[0.0], [1.0]]) == 0.0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
