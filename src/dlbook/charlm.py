"""Character-level language-model data: vocabulary, split, random windows, baselines.

Plumbing for chapter 8 and the ``dlbook.bench gpt`` benchmark; NumPy only
(no Keras or TensorFlow), so it is quick to test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CharVocab:
    """The characters of a text, each given an integer id in sorted order.

    Attributes:
        chars: the distinct characters, sorted; ``chars[i]`` has id ``i``.
    """

    chars: str

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """The vocabulary of every character that occurs in ``text``."""
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        """Number of distinct characters."""
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """``text`` as an ``int32`` array of ids (KeyError for unknown characters)."""
        table = {c: i for i, c in enumerate(self.chars)}
        return np.fromiter((table[c] for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids) -> str:
        """The text whose ids are ``ids`` (any iterable of integers)."""
        return "".join(self.chars[int(i)] for i in ids)


def train_val_split(ids: np.ndarray, train_fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """The first ``train_fraction`` of ``ids`` for training, the rest for validation
    (contiguous, not shuffled: the split nanoGPT and char-rnn use)."""
    if not 0 < train_fraction < 1:
        raise ValueError("train_fraction must be between 0 and 1")
    n = int(train_fraction * len(ids))
    return ids[:n], ids[n:]


def random_windows(
    ids: np.ndarray, count: int, block_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` windows of ``block_size + 1`` consecutive ids at random offsets.

    Returns:
        ``(x, y)``, each ``int32`` of shape ``(count, block_size)``, with
        ``y[:, t] == x[:, t + 1]``: the target at every position is the next id.
    """
    if len(ids) <= block_size + 1:
        raise ValueError(f"a text of {len(ids)} ids has no window of {block_size + 1}")
    offsets = rng.integers(0, len(ids) - block_size - 1, size=count)
    windows = ids[offsets[:, None] + np.arange(block_size + 1)]
    return windows[:, :-1].astype(np.int32), windows[:, 1:].astype(np.int32)


def bigram_counts(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Matrix ``C`` with ``C[a, b]`` = how often id ``b`` follows id ``a``."""
    counts = np.zeros((vocab_size, vocab_size), dtype=np.int64)
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    return counts


def bigram_loss(train: np.ndarray, val: np.ndarray, vocab_size: int, smoothing: float = 0.1) -> float:
    """Validation cross-entropy (nats per character) of a count-based bigram model.

    The model predicts each character from the one before it alone, with
    probabilities ``(C[a, b] + smoothing) / sum_b (C[a, b] + smoothing)``
    estimated on ``train``; the loss is the mean of ``-log p(b | a)`` over
    every consecutive pair of ``val``.
    """
    counts = bigram_counts(train, vocab_size) + smoothing
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
    return float(-log_p[val[:-1], val[1:]].mean())


def unigram_loss(train: np.ndarray, val: np.ndarray, vocab_size: int, smoothing: float = 0.1) -> float:
    """Validation cross-entropy of predicting every character from its frequency alone."""
    counts = np.bincount(train, minlength=vocab_size) + smoothing
    return float(-np.log(counts / counts.sum())[val].mean())


def uniform_loss(vocab_size: int) -> float:
    """Cross-entropy of guessing uniformly among ``vocab_size`` characters: ``ln V``."""
    return math.log(vocab_size)
