"""Multi-head self-attention as a Keras 3 layer: the one written in chapter 7.

Chapter 7 derives scaled dot-product attention by hand and shows this module's
source; chapter 8's GPT imports :class:`CausalSelfAttention` from here, so the
book holds one copy of the code. Everything is written with ``keras.ops`` and
runs on the TensorFlow and JAX backends.

This module imports Keras when it is imported (it defines a Keras layer), so a
chapter imports it after ``dlbook.setup()``; ``import dlbook`` alone never does.
"""

from __future__ import annotations

import math

import keras
from keras import ops


def attention_by_hand(q, k, v, causal: bool = False):
    """Scaled dot-product attention, one operation per line of the formula.

    Args:
        q, k, v: tensors of shape ``(batch, seq, heads, head_dim)``.
        causal: if True, position ``i`` attends only to positions ``j <= i``.

    Returns:
        A tensor of shape ``(batch, seq, heads, head_dim)``: for every query,
        the softmax-weighted average of the values.
    """
    head_dim = ops.shape(q)[-1]
    q, k, v = (ops.transpose(t, (0, 2, 1, 3)) for t in (q, k, v))  # (batch, heads, seq, dim)
    scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(head_dim)
    if causal:
        seq = ops.shape(q)[2]
        allowed = ops.tril(ops.ones((seq, seq), dtype="bool"))
        scores = ops.where(allowed, scores, ops.cast(-1e9, scores.dtype))
    weights = ops.softmax(scores, axis=-1)
    return ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))


@keras.saving.register_keras_serializable(package="dlbook")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with one fused query/key/value projection.

    The input ``x`` of shape ``(batch, seq, model_dim)`` is projected to
    queries, keys and values by one matrix of shape ``(model_dim, 3 *
    model_dim)``; each is split into ``num_heads`` heads by a reshape; the
    heads attend independently; their outputs are concatenated by a reshape
    and mixed by an output matrix of shape ``(model_dim, model_dim)``.

    Args:
        num_heads: number of heads; must divide the model dimension.
        causal: mask future positions (a decoder, as in GPT).
        use_bias: add biases to the two projections.
        dropout: dropout rate applied to the output (residual dropout).
        fused: compute attention with ``keras.ops.dot_product_attention``
            (one fused operation; cuDNN flash attention on a GPU where
            available) instead of :func:`attention_by_hand`.
        output_init_std: standard deviation of the output projection's
            initial weights (GPT-2 scales it down with depth).
    """

    def __init__(
        self,
        num_heads: int,
        causal: bool = True,
        use_bias: bool = False,
        dropout: float = 0.0,
        fused: bool = True,
        output_init_std: float = 0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.causal = causal
        self.use_bias = use_bias
        self.dropout = dropout
        self.fused = fused
        self.output_init_std = output_init_std
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim % self.num_heads:
            raise ValueError(f"model dimension {dim} is not divisible by {self.num_heads} heads")
        normal = keras.initializers.RandomNormal
        self.w_qkv = self.add_weight(shape=(dim, 3 * dim), initializer=normal(stddev=0.02), name="w_qkv")
        self.w_out = self.add_weight(
            shape=(dim, dim), initializer=normal(stddev=self.output_init_std), name="w_out"
        )
        if self.use_bias:
            self.b_qkv = self.add_weight(shape=(3 * dim,), initializer="zeros", name="b_qkv")
            self.b_out = self.add_weight(shape=(dim,), initializer="zeros", name="b_out")

    def call(self, x, training=None):
        batch, seq, dim = ops.shape(x)[0], ops.shape(x)[1], x.shape[-1]
        head_dim = dim // self.num_heads
        # One 2-D matrix product for queries, keys and values of all tokens: (batch*seq, 3*dim).
        qkv = ops.matmul(ops.reshape(x, (-1, dim)), self.w_qkv)
        if self.use_bias:
            qkv = qkv + self.b_qkv
        qkv = ops.reshape(qkv, (batch, seq, 3, self.num_heads, head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # each (batch, seq, heads, head_dim)
        if self.fused:
            y = ops.dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            y = attention_by_hand(q, k, v, causal=self.causal)
        y = ops.matmul(ops.reshape(y, (-1, dim)), self.w_out)  # heads concatenated, then mixed
        if self.use_bias:
            y = y + self.b_out
        return self.dropout_layer(ops.reshape(y, (batch, seq, dim)), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "causal": self.causal,
            "use_bias": self.use_bias,
            "dropout": self.dropout,
            "fused": self.fused,
            "output_init_std": self.output_init_std,
        }

    def load_multi_head_attention(self, mha: keras.layers.MultiHeadAttention) -> None:
        """Copy the weights of a built ``keras.layers.MultiHeadAttention`` (same
        model dimension and heads, ``key_dim = model_dim / heads``) into this
        layer, so both compute the same function."""
        import numpy as np

        q, k, v, o = (mha.query_dense, mha.key_dense, mha.value_dense, mha.output_dense)
        dim = self.w_qkv.shape[0]
        kernels = [ops.convert_to_numpy(d.kernel).reshape(dim, dim) for d in (q, k, v)]
        self.w_qkv.assign(np.concatenate(kernels, axis=1))
        self.w_out.assign(ops.convert_to_numpy(o.kernel).reshape(dim, dim))
        if self.use_bias:
            biases = [ops.convert_to_numpy(d.bias).reshape(dim) for d in (q, k, v)]
            self.b_qkv.assign(np.concatenate(biases))
            self.b_out.assign(ops.convert_to_numpy(o.bias))
