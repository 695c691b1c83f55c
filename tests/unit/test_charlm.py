"""dlbook.charlm: vocabulary, split, windows and baseline losses."""

import math

import numpy as np
import pytest

from dlbook import charlm


def test_vocab_round_trip_and_order():
    vocab = charlm.CharVocab.from_text("hello world")
    assert vocab.chars == " dehlorw" and vocab.size == 8
    ids = vocab.encode("hello")
    assert ids.dtype == np.int32 and list(ids) == [3, 2, 4, 4, 5]
    assert vocab.decode(ids) == "hello"
    with pytest.raises(KeyError):
        vocab.encode("z")


def test_split_is_contiguous_ninety_ten():
    ids = np.arange(1000)
    train, val = charlm.train_val_split(ids)
    assert len(train) == 900 and len(val) == 100 and train[-1] + 1 == val[0]
    with pytest.raises(ValueError):
        charlm.train_val_split(ids, 1.0)


def test_random_windows_targets_are_shifted_inputs():
    ids = np.arange(100, dtype=np.int32)
    x, y = charlm.random_windows(ids, 50, 8, np.random.default_rng(0))
    assert x.shape == y.shape == (50, 8) and x.dtype == np.int32
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    np.testing.assert_array_equal(y[:, -1], x[:, -1] + 1)  # consecutive ids
    assert y.max() <= 99
    with pytest.raises(ValueError):
        charlm.random_windows(ids[:5], 1, 8, np.random.default_rng(0))


def test_baselines():
    ids = np.array([0, 1] * 500, dtype=np.int32)  # perfectly predictable from the previous id
    assert charlm.bigram_counts(ids, 2).tolist() == [[0, 500], [499, 0]]
    assert charlm.bigram_loss(ids, ids, 2, smoothing=1e-6) < 1e-4
    assert abs(charlm.unigram_loss(ids, ids, 2, smoothing=0) - math.log(2)) < 1e-9
    assert charlm.uniform_loss(65) == pytest.approx(4.1744, abs=1e-4)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 4, 20000).astype(np.int32)  # no structure: bigram ~ unigram ~ ln 4
    assert abs(charlm.bigram_loss(noise[:10000], noise[10000:], 4) - math.log(4)) < 0.01
