"""dlbook.attention: the layer agrees with the formula and with keras.layers.MultiHeadAttention."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlbook.attention import CausalSelfAttention, attention_by_hand  # noqa: E402


def numpy_attention(q, k, v, causal):
    """The formula in NumPy, one head at a time: softmax(q k^T / sqrt(d)) v."""
    b, t, h, d = q.shape
    out = np.zeros_like(q)
    for i in range(b):
        for j in range(h):
            s = q[i, :, j] @ k[i, :, j].T / np.sqrt(d)
            if causal:
                s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
            w = np.exp(s - s.max(-1, keepdims=True))
            out[i, :, j] = (w / w.sum(-1, keepdims=True)) @ v[i, :, j]
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_attention_by_hand_matches_numpy(causal):
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(2, 5, 3, 4)).astype("float32") for _ in range(3))
    got = keras.ops.convert_to_numpy(attention_by_hand(q, k, v, causal=causal))
    np.testing.assert_allclose(got, numpy_attention(q, k, v, causal), atol=1e-5)


def test_causal_first_position_sees_only_itself():
    rng = np.random.default_rng(1)
    q, k, v = (rng.normal(size=(1, 4, 1, 2)).astype("float32") for _ in range(3))
    got = keras.ops.convert_to_numpy(attention_by_hand(q, k, v, causal=True))
    np.testing.assert_allclose(got[0, 0], v[0, 0], atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("use_bias", [False, True])
def test_layer_matches_keras_multi_head_attention(causal, use_bias):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 8)).astype("float32")
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, use_bias=use_bias)
    expected = keras.ops.convert_to_numpy(mha(x, x, use_causal_mask=causal))
    for fused in (True, False):
        layer = CausalSelfAttention(2, causal=causal, use_bias=use_bias, fused=fused)
        layer.build(x.shape)
        layer.load_multi_head_attention(mha)
        got = keras.ops.convert_to_numpy(layer(x))
        assert np.max(np.abs(got - expected)) <= 1e-5


def test_fused_equals_by_hand_and_config_round_trip():
    x = np.random.default_rng(3).normal(size=(3, 7, 12)).astype("float32")
    fused = CausalSelfAttention(3, fused=True)
    fused.build(x.shape)
    hand = CausalSelfAttention.from_config({**fused.get_config(), "fused": False})
    hand.build(x.shape)
    hand.set_weights(fused.get_weights())
    assert hand.num_heads == 3 and hand.causal and not hand.fused
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused(x)), keras.ops.convert_to_numpy(hand(x)), atol=1e-5)


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="divisible"):
        CausalSelfAttention(3).build((1, 4, 8))
