"""dlbook.metrics: confusion matrix and per-class scores from counts."""

import numpy as np
import pytest

from dlbook import metrics


def test_confusion_matrix_counts_pairs():
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2])
    cm = metrics.confusion_matrix(y_true, y_pred)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]


def test_confusion_matrix_matches_a_loop_on_random_labels():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    cm = metrics.confusion_matrix(y_true, y_pred, n_classes=9)
    loop = np.zeros((9, 9), dtype=int)
    for t, p in zip(y_true, y_pred):
        loop[t, p] += 1
    assert np.array_equal(cm, loop)
    assert cm.sum() == 500 and cm[7:].sum() == 0 and cm[:, 7:].sum() == 0


@pytest.mark.parametrize(
    "y_true, y_pred, n",
    [
        ([0, 1], [0], None),  # lengths differ
        ([0.0, 1.0], [0, 1], None),  # floats, not class indices
        ([0, -1], [0, 1], None),  # negative
        ([0, 3], [0, 1], 3),  # index >= n_classes
    ],
)
def test_confusion_matrix_rejects_bad_input(y_true, y_pred, n):
    with pytest.raises(ValueError):
        metrics.confusion_matrix(np.array(y_true), np.array(y_pred), n)


def test_precision_recall_f1_worked_by_hand():
    # class 0: tp 1, predicted 1, actual 2; class 1: tp 2, predicted 3, actual 3;
    # class 2: tp 1, predicted 2, actual 1.
    cm = np.array([[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    s = metrics.precision_recall_f1(cm)
    assert s.precision == pytest.approx([1.0, 2 / 3, 0.5])
    assert s.recall == pytest.approx([0.5, 2 / 3, 1.0])
    assert s.f1 == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    assert s.support.tolist() == [2, 3, 1]
    assert s.macro()["f1"] == pytest.approx(2 / 3)


def test_precision_and_recall_differ_and_swap_under_transpose():
    """Precision divides by predictions (columns), recall by labels (rows)."""
    cm = np.array([[8, 2], [6, 4]])
    s, t = metrics.precision_recall_f1(cm), metrics.precision_recall_f1(cm.T)
    assert not np.allclose(s.precision, s.recall)
    assert np.allclose(s.precision, t.recall) and np.allclose(s.recall, t.precision)


def test_zero_denominators_give_zero_not_nan():
    cm = np.array([[3, 0, 0], [1, 0, 0], [0, 0, 0]])  # class 1 never predicted, class 2 absent
    s = metrics.precision_recall_f1(cm)
    assert np.all(np.isfinite(s.precision)) and np.all(np.isfinite(s.f1))
    assert s.precision[1] == 0 and s.recall[1] == 0 and s.f1[1] == 0
    assert s.recall[2] == 0 and s.support[2] == 0


def test_accuracy_from_counts():
    assert metrics.accuracy_from_counts(np.array([[3, 1], [0, 4]])) == pytest.approx(7 / 8)
    with pytest.raises(ValueError):
        metrics.accuracy_from_counts(np.zeros((2, 2)))


def test_most_confident_mistakes_orders_by_confidence():
    probs = np.array([
        [0.9, 0.1],   # predicted 0, true 0: right
        [0.2, 0.8],   # predicted 1, true 0: wrong, confidence 0.8
        [0.95, 0.05], # predicted 0, true 1: wrong, confidence 0.95
        [0.6, 0.4],   # predicted 0, true 1: wrong, confidence 0.6
    ])
    y = np.array([0, 0, 1, 1])
    assert metrics.most_confident_mistakes(probs, y, 2).tolist() == [2, 1]
    assert metrics.most_confident_mistakes(probs, y, 10).tolist() == [2, 1, 3]
    assert metrics.most_confident_mistakes(probs[:1], y[:1], 3).tolist() == []
