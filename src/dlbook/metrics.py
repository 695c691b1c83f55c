"""Classification metrics from counts, in plain NumPy.

A classifier is judged by its confusion matrix: ``cm[i, j]`` counts the
examples of true class ``i`` predicted as class ``j``. Every other figure
(accuracy, per-class precision, recall and F1) is a ratio of its entries:

* precision of class ``k``: ``cm[k, k] / cm[:, k].sum()``, the share of the
  examples *predicted* as ``k`` that really are ``k``;
* recall of class ``k``: ``cm[k, k] / cm[k, :].sum()``, the share of the
  examples that *are* ``k`` that were predicted as ``k``;
* F1: their harmonic mean, ``2 p r / (p + r)``.

A ratio whose denominator is zero (a class never predicted, or absent from
the labels) is reported as 0, the usual convention.

Nothing here imports a deep-learning framework; chapters check these helpers
against ``keras.metrics`` as a second, independent computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None
) -> np.ndarray:
    """Count (true class, predicted class) pairs.

    Args:
        y_true: integer labels, shape ``(n,)``.
        y_pred: integer predictions, shape ``(n,)``.
        n_classes: number of classes; default ``max(label, prediction) + 1``.

    Returns:
        An ``int64`` array of shape ``(n_classes, n_classes)``; rows are true
        classes, columns predicted classes, and the entries sum to ``n``.

    Raises:
        ValueError: for arrays of different lengths, non-integer or negative
            values, or a value ``>= n_classes``.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D and of equal length, got {y_true.shape} and {y_pred.shape}"
        )
    for name, a in (("y_true", y_true), ("y_pred", y_pred)):
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class indices (use argmax on probabilities)")
        if a.size and a.min() < 0:
            raise ValueError(f"{name} holds a negative class index")
    if n_classes is None:
        n_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    if y_true.size and max(y_true.max(), y_pred.max()) >= n_classes:
        raise ValueError(f"a class index is >= n_classes = {n_classes}")
    flat = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@dataclass(frozen=True)
class ClassScores:
    """Per-class scores computed from a confusion matrix (arrays of length K).

    Attributes:
        precision: ``tp / (tp + fp)``, per class.
        recall: ``tp / (tp + fn)``, per class.
        f1: ``2 p r / (p + r)``, per class.
        support: number of true examples of each class.
    """

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    def macro(self) -> dict[str, float]:
        """Unweighted means over classes of precision, recall and F1."""
        return {
            "precision": float(self.precision.mean()),
            "recall": float(self.recall.mean()),
            "f1": float(self.f1.mean()),
        }


def precision_recall_f1(cm: np.ndarray) -> ClassScores:
    """Per-class precision, recall, F1 and support from a confusion matrix.

    Args:
        cm: a square count matrix, rows true classes, columns predictions
            (as returned by :func:`confusion_matrix`).

    Returns:
        A :class:`ClassScores`; a zero denominator gives a score of 0.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {cm.shape}")
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)  # column sums: tp + fp
    actual = cm.sum(axis=1)  # row sums: tp + fn
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return ClassScores(precision, recall, f1, actual.astype(np.int64))


def accuracy_from_counts(cm: np.ndarray) -> float:
    """The share of correct predictions: the trace over the total."""
    cm = np.asarray(cm)
    total = cm.sum()
    if total == 0:
        raise ValueError("the confusion matrix is empty")
    return float(np.trace(cm) / total)


def most_confident_mistakes(probs: np.ndarray, y_true: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` wrong predictions made with the highest confidence.

    Args:
        probs: predicted class probabilities, shape ``(n, K)``.
        y_true: integer labels, shape ``(n,)``.
        k: how many to return (fewer if there are fewer mistakes).

    Returns:
        Indices into ``probs``, most confident mistake first. The confidence
        of a prediction is the probability of the predicted (arg-max) class.
    """
    probs = np.asarray(probs)
    y_true = np.asarray(y_true)
    if probs.ndim != 2 or probs.shape[0] != y_true.shape[0]:
        raise ValueError(f"probs must be (n, K) with n = len(y_true), got {probs.shape}")
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    confidence = probs[wrong, pred[wrong]]
    order = np.argsort(-confidence, kind="stable")
    return wrong[order[: max(k, 0)]]
