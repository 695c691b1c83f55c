"""Chapter 9's small BERT-style encoder: masked-LM pretraining and fine-tuning.

Chapter 9 shows this module's source where it teaches it; ``python -m
dlbook.bench text`` runs the same code from cached token-id arrays (see
:mod:`dlbook.token_ids`) on a machine without TensorFlow, such as the GPU
machine of the JAX runs. Everything is written with Keras layers and
``keras.ops`` and runs on the TensorFlow and JAX backends.

Token ids follow ``TextVectorization``: 0 is padding, 1 is ``[UNK]``, and the
id ``vocab_size`` (one past the vocabulary) is ``[MASK]``.

This module imports Keras when it is imported, so a chapter imports it after
``dlbook.setup()``; ``import dlbook`` alone never does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
from keras import layers, ops

from . import training
from .attention import CausalSelfAttention

__all__ = ["EncoderConfig", "PretrainConfig", "FinetuneConfig", "recipe", "build_encoder",
           "pretraining_rows", "unigram_entropy", "mask_tokens", "build_mlm", "pretrain", "masked_lm_scores",
           "FineTuner"]


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of the encoder: vocabulary (without [MASK]), sequence length, width,
    attention heads, feed-forward width and number of blocks."""

    vocab_size: int
    length: int
    dim: int
    heads: int
    ff: int
    blocks: int

    @property
    def mask_id(self) -> int:
        """The id of ``[MASK]``: one past the vocabulary."""
        return self.vocab_size


@dataclass(frozen=True)
class PretrainConfig:
    """Masked-LM pretraining: sequences drawn in all, batch size, sequences masked
    afresh per chunk (dynamic masking), peak learning rate, masking rate."""

    sequences: int
    batch: int
    chunk: int
    lr: float
    rate: float = 0.15


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning a classifier: at least ``min_steps`` steps, else ``epochs``
    passes over the labelled reviews; learning rate; batch size; the
    learning rates tried (``lrs``, chosen on validation; empty: ``lr`` alone);
    how many validation checks a run makes (early stopping) and after how many
    checks without a better validation accuracy it stops."""

    min_steps: int
    epochs: int
    lr: float
    batch: int = 32
    lrs: tuple[float, ...] = ()
    checks: int = 4
    patience: int = 2

    @property
    def grid(self) -> tuple[float, ...]:
        """The learning rates :meth:`FineTuner.select` tries."""
        return self.lrs or (self.lr,)


def recipe(profile: str, vocab_size: int) -> tuple[EncoderConfig, PretrainConfig, FinetuneConfig]:
    """Chapter 9's encoder, pretraining and fine-tuning settings for a run profile."""
    enc = {
        "smoke": dict(length=64, dim=32, heads=2, ff=64, blocks=1),
        "cpu": dict(length=128, dim=64, heads=4, ff=256, blocks=2),
        "gpu": dict(length=256, dim=256, heads=4, ff=1024, blocks=4),
    }[profile]
    pre = {
        "smoke": PretrainConfig(sequences=768, batch=32, chunk=384, lr=2e-3),
        "cpu": PretrainConfig(sequences=32000, batch=32, chunk=4000, lr=3e-3),
        "gpu": PretrainConfig(sequences=720000, batch=128, chunk=72000, lr=1e-3),
    }[profile]
    ft = {
        "smoke": FinetuneConfig(min_steps=20, epochs=2, lr=1e-3, checks=2, patience=1),
        "cpu": FinetuneConfig(min_steps=150, epochs=1, lr=5e-4, lrs=(2e-4, 1e-3)),
        "gpu": FinetuneConfig(min_steps=300, epochs=3, lr=1e-4, lrs=(5e-5, 1e-4, 3e-4)),
    }[profile]
    return EncoderConfig(vocab_size=vocab_size, **enc), pre, ft


class PaddedSelfAttention(CausalSelfAttention):
    """Chapter 7's attention, bidirectional, with padding keys masked out."""

    def call(self, x, keep, training=None):
        batch, seq, dim = ops.shape(x)[0], ops.shape(x)[1], x.shape[-1]
        qkv = ops.reshape(ops.matmul(x, self.w_qkv) + self.b_qkv,
                          (batch, seq, 3, self.num_heads, dim // self.num_heads))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        y = ops.dot_product_attention(q, k, v, mask=keep[:, None, None, :])  # keep: (batch, keys)
        y = ops.matmul(ops.reshape(y, (batch, seq, dim)), self.w_out) + self.b_out
        return self.dropout_layer(y, training=training)


class TokenAndPosition(layers.Layer):
    """A learned token embedding plus a learned position embedding."""

    def __init__(self, vocab_size: int, length: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.tokens = layers.Embedding(vocab_size, dim)
        self.positions = layers.Embedding(length, dim)

    def call(self, ids):
        return self.tokens(ids) + self.positions(ops.arange(ops.shape(ids)[1]))[None]


def build_encoder(cfg: EncoderConfig, dropout: float = 0.0) -> keras.Model:
    """Token and position embeddings, then ``cfg.blocks`` pre-norm encoder blocks
    (bidirectional attention with padding masked, GELU feed-forward), then a
    final layer norm. Input: ids ``(batch, cfg.length)``; output: one vector of
    width ``cfg.dim`` per position."""
    ids_in = keras.Input(shape=(cfg.length,), dtype="int32")
    keep = ops.not_equal(ids_in, 0)
    x = TokenAndPosition(cfg.vocab_size + 1, cfg.length, cfg.dim, name="embed")(ids_in)  # + [MASK]
    for _ in range(cfg.blocks):
        h = PaddedSelfAttention(cfg.heads, causal=False, use_bias=True, dropout=dropout)(
            layers.LayerNormalization(epsilon=1e-5)(x), keep)
        x = x + h
        h = layers.Dense(cfg.ff, activation="gelu")(layers.LayerNormalization(epsilon=1e-5)(x))
        x = x + layers.Dropout(dropout)(layers.Dense(cfg.dim)(h))
    return keras.Model(ids_in, layers.LayerNormalization(epsilon=1e-5)(x), name="encoder")


def pretraining_rows(arrays: list[np.ndarray], cfg: EncoderConfig, min_tokens: int = 8) -> np.ndarray:
    """The pretraining text: the id rows of ``arrays`` (never the test set) cut to
    the encoder's length, without rows of fewer than ``min_tokens`` real tokens."""
    x = np.concatenate([a[:, : cfg.length] for a in arrays])
    return x[(x != 0).sum(axis=1) >= min_tokens]


def unigram_entropy(x: np.ndarray, vocab_size: int) -> float:
    """Entropy (nats) of the word frequencies of the real tokens of ``x``:
    the masked-LM loss of a model that ignores the context."""
    freq = np.bincount(x[x != 0], minlength=vocab_size) / np.sum(x != 0)
    freq = freq[freq > 0]
    return float(-np.sum(freq * np.log(freq)))


def n_predictions(cfg: EncoderConfig, rate: float = 0.15) -> int:
    """How many positions per sequence carry a masked-LM target (at most)."""
    return int(round(rate * cfg.length))


def mask_tokens(x: np.ndarray, rng: np.random.Generator, cfg: EncoderConfig, rate: float = 0.15):
    """BERT's corruption of a batch of id rows.

    Chooses ``rate`` of each row's real (non-padding) tokens; 80% of the chosen
    become ``[MASK]``, 10% a random word, 10% stay as they are.

    Returns:
        ``(corrupted ids, chosen positions, original ids there, weights)``; the
        last three have shape ``(rows, n_predictions)`` and the weights are 1
        for a real target, 0 for a slot left unused by a short row.
    """
    n_pred = n_predictions(cfg, rate)
    real = x != 0
    order = np.argsort(np.where(real, rng.random(x.shape), 2.0), axis=1)[:, :n_pred]  # padding last
    k = np.maximum(1, np.round(rate * real.sum(axis=1))).astype(int)                 # rate of each row
    weights = (np.arange(n_pred)[None] < k[:, None]) & np.take_along_axis(real, order, axis=1)
    targets = np.take_along_axis(x, order, axis=1)
    draw = rng.random(order.shape)
    random_words = rng.integers(2, cfg.vocab_size, order.shape)
    new = np.where(draw < 0.8, cfg.mask_id, np.where(draw < 0.9, random_words, targets))
    corrupted = x.copy()
    np.put_along_axis(corrupted, order, np.where(weights, new, targets), axis=1)
    return corrupted, order.astype("int32"), targets, weights.astype("float32")


class TiedOutput(layers.Layer):
    """Logits over the vocabulary: hidden states times the token-embedding matrix, plus a bias."""

    def __init__(self, embedding: layers.Embedding, vocab_size: int, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding
        self.vocab_size = vocab_size

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")

    def call(self, h):
        return ops.matmul(h, ops.transpose(self.embedding.embeddings[: self.vocab_size])) + self.bias


def build_mlm(encoder: keras.Model, cfg: EncoderConfig, rate: float = 0.15) -> keras.Model:
    """The masked-LM model: inputs ``[corrupted ids, chosen positions]``, output the
    logits at the chosen positions only, through BERT's transform (dense, GELU,
    layer norm) and an output layer tied to the token embeddings."""
    ids_in = keras.Input(shape=(cfg.length,), dtype="int32")
    positions = keras.Input(shape=(n_predictions(cfg, rate),), dtype="int32")
    h = ops.take_along_axis(encoder(ids_in), positions[:, :, None], axis=1)  # chosen positions only
    h = layers.LayerNormalization(epsilon=1e-5)(layers.Dense(cfg.dim, activation="gelu")(h))
    return keras.Model([ids_in, positions], TiedOutput(encoder.get_layer("embed").tokens, cfg.vocab_size)(h),
                       name="mlm")


def compile_mlm(mlm: keras.Model, pre: PretrainConfig, weight_decay: float = 0.01) -> keras.Model:
    """AdamW with a linear warm-up over 5% of the steps, then a cosine decay to 10%;
    cross-entropy averaged over the weighted (real) targets. The training step is
    compiled with XLA: Keras's ``jit_compile="auto"`` leaves XLA off for
    TensorFlow on a machine without a GPU, and XLA makes this model about 2x faster there."""
    steps = pre.sequences // pre.batch
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, alpha=0.1, warmup_target=pre.lr,
                                                      warmup_steps=max(1, steps // 20))
    mlm.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                reduction="mean_with_sample_weight"),
                jit_compile=True)
    return mlm


@dataclass
class PretrainLog:
    """What :func:`pretrain` measured: sequences seen after each chunk, the mean
    training loss of each chunk, and the wall-clock seconds of the whole loop."""

    seen: list
    loss: list
    seconds: float = 0.0
    tokens: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else float("nan")


def pretrain(mlm: keras.Model, x_pre: np.ndarray, cfg: EncoderConfig, pre: PretrainConfig,
             rng: np.random.Generator, log: Callable[[str], None] | None = print) -> PretrainLog:
    """Masked-LM pretraining on rows of ``x_pre`` drawn at random: each chunk of
    ``pre.chunk`` rows gets a fresh masking (dynamic masking) and one pass of
    ``fit``. Tokens per second count every position of every sequence."""
    out = PretrainLog(seen=[], loss=[])
    t0 = time.perf_counter()
    for start in range(0, pre.sequences, pre.chunk):
        rows = rng.integers(0, len(x_pre), pre.chunk)
        corrupted, pos, tgt, wts = mask_tokens(x_pre[rows], rng, cfg, pre.rate)
        h = mlm.fit([corrupted, pos], tgt, sample_weight=wts, batch_size=pre.batch, epochs=1, verbose=0)
        out.loss.append(float(h.history["loss"][0]))
        out.seen.append(start + pre.chunk)
        if log:
            log(f"{out.seen[-1]:9,} sequences: masked-LM loss {out.loss[-1]:.3f}")
    out.seconds = time.perf_counter() - t0
    out.tokens = out.seen[-1] * cfg.length
    return out


def masked_lm_scores(mlm: keras.Model, x: np.ndarray, cfg: EncoderConfig, seed: int = 1,
                     rate: float = 0.15) -> tuple[float, float]:
    """Masked-LM loss (nats) and top-1 accuracy on the hidden words of ``x``,
    masked once with a fixed seed."""
    corrupted, pos, tgt, wts = mask_tokens(x, np.random.default_rng(seed), cfg, rate)
    logits = mlm.predict([corrupted, pos], batch_size=256, verbose=0).astype("float64")
    top = logits.max(-1, keepdims=True)
    logp = logits - top - np.log(np.sum(np.exp(logits - top), -1, keepdims=True))
    loss = -np.sum(np.take_along_axis(logp, tgt[..., None], -1)[..., 0] * wts) / wts.sum()
    top1 = np.sum((logits.argmax(-1) == tgt) * wts) / wts.sum()
    return float(loss), float(top1)


class FineTuner:
    """One classifier (encoder, mean over real tokens, dropout, one sigmoid unit),
    compiled once, that can be put back to either starting point: the
    pretrained encoder or fresh random weights, with the same head.

    Building and compiling a new model per run would trace a new training step
    each time; instead :meth:`restart` restores the weights and the dropout
    layers' random state and zeroes the optimizer's step counter and moments,
    as if it had never taken a step.
    """

    def __init__(self, cfg: EncoderConfig, ft: FinetuneConfig, pretrained_weights: list, seed: int,
                 dropout: float = 0.1):
        self.cfg, self.ft = cfg, ft
        keras.utils.set_random_seed(seed)
        encoder = build_encoder(cfg, dropout=dropout)
        ids_in = keras.Input(shape=(cfg.length,), dtype="int32")
        pooled = layers.GlobalAveragePooling1D()(encoder(ids_in), mask=ops.not_equal(ids_in, 0))
        out = layers.Dense(1, activation="sigmoid")(layers.Dropout(dropout)(pooled))
        self.model = keras.Model(ids_in, out, name="classifier")
        self.model.compile(optimizer=keras.optimizers.AdamW(ft.lr, weight_decay=0.01), loss="binary_crossentropy",
                           jit_compile=True)
        self.start = {False: self.model.get_weights()}  # fresh random weights
        encoder.set_weights(pretrained_weights)
        self.start[True] = self.model.get_weights()     # the same head on the pretrained encoder
        self.seeds = training.seed_states(self.model)    # so every run draws the same dropout masks

    def restart(self, pretrained: bool) -> keras.Model:
        """The classifier at its starting point, with an optimizer that has taken no step."""
        training.reset_training_state(self.model, self.start[pretrained], self.seeds)
        return self.model

    def steps_for(self, n: int) -> int:
        """Training steps for ``n`` labelled reviews."""
        return max(self.ft.min_steps, self.ft.epochs * n // self.ft.batch)

    def feed(self, rows: np.ndarray, seed: int) -> np.ndarray:
        """The order in which the labelled ``rows`` are fed: whole shuffled passes,
        cut to the number of steps."""
        n_steps = self.steps_for(len(rows))
        need = n_steps * self.ft.batch
        rng = np.random.default_rng(seed)
        return np.concatenate([rng.permutation(rows) for _ in range(-(-need // len(rows)))])[:need]

    def bce(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean binary cross-entropy of the classifier on ``x`` with labels ``y``."""
        p = np.clip(self.model.predict(x, batch_size=256, verbose=0)[:, 0], 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Accuracy of the classifier on ``x`` (threshold 0.5)."""
        return float(np.mean((self.model.predict(x, batch_size=256, verbose=0)[:, 0] > 0.5) == y))

    def run(self, pretrained: bool, x: np.ndarray, y: np.ndarray, rows: np.ndarray, seed: int,
            evaluate: dict[str, np.ndarray], lr: float | None = None,
            val: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
        """Fine-tune from one starting point on the labelled ``rows`` of ``(x, y)``,
        with learning rate ``lr`` (default: the config's).

        With ``val = (x_val, y_val)`` the run stops early: it checks the
        validation accuracy ``ft.checks`` times, evenly over its steps, keeps the
        weights of the best check, and stops after ``ft.patience`` checks
        without a better one.

        Returns the training loss on (up to 256 of) those rows before and after,
        the predicted probabilities for each array in ``evaluate`` (of the kept
        weights), the steps taken and kept, the validation accuracy of the kept
        weights (None without ``val``) and the seconds taken.
        """
        t0 = time.perf_counter()
        model = self.restart(pretrained)
        model.optimizer.learning_rate.assign(self.ft.lr if lr is None else lr)
        own = np.resize(rows, 256)
        loss_before = self.bce(x[own], y[own])
        feed = self.feed(rows, seed)
        n_steps = len(feed) // self.ft.batch
        checks = self.ft.checks if val is not None else 1
        ends = [round(n_steps * (i + 1) / checks) * self.ft.batch for i in range(checks)]  # whole batches
        best, best_step, steps, done, waited = -1.0, 0, 0, 0, 0
        kept = None
        for end in ends:
            model.fit(x[feed[done:end]], y[feed[done:end]], batch_size=self.ft.batch, epochs=1, shuffle=False,
                      verbose=0)
            steps, done = end // self.ft.batch, end
            if val is None:
                break
            score = self.accuracy(*val)
            if score > best:
                best, best_step, waited, kept = score, steps, 0, model.get_weights()
            else:
                waited += 1
                if waited >= self.ft.patience:
                    break
        if kept is not None:
            model.set_weights(kept)
        loss_after = self.bce(x[own], y[own])
        sizes = [len(a) for a in evaluate.values()]
        p = {}
        if evaluate:
            p_all = model.predict(np.concatenate(list(evaluate.values())), batch_size=256, verbose=0)[:, 0]
            p = dict(zip(evaluate, np.split(p_all, np.cumsum(sizes)[:-1])))
        return dict(p=p, loss_before=loss_before, loss_after=loss_after, steps=steps if val is not None else n_steps,
                    best_step=best_step if val is not None else n_steps, val=best if val is not None else None,
                    lr=self.ft.lr if lr is None else lr, seconds=time.perf_counter() - t0)

    def select(self, pretrained: bool, x: np.ndarray, y: np.ndarray, rows: np.ndarray, seed: int,
               val: tuple[np.ndarray, np.ndarray], evaluate: dict[str, np.ndarray]) -> dict:
        """The fair protocol: one early-stopped :meth:`run` per learning rate of
        ``ft.grid``, the setting with the best validation accuracy kept (ties:
        the first learning rate of the grid), and only
        then the arrays of ``evaluate`` (the test set) scored, once.

        Returns the chosen run (as :meth:`run`) with ``grid``: the validation
        accuracy and steps kept of every learning rate tried; ``seconds`` is the
        whole grid's.
        """
        t0 = time.perf_counter()
        tried, chosen, weights = {}, None, None
        for lr in self.ft.grid:
            r = self.run(pretrained, x, y, rows, seed, evaluate={}, lr=lr, val=val)
            tried[lr] = (r["val"], r["best_step"])
            if chosen is None or r["val"] > chosen["val"]:
                chosen, weights = r, self.model.get_weights()
        self.model.set_weights(weights)
        sizes = [len(a) for a in evaluate.values()]
        p_all = self.model.predict(np.concatenate(list(evaluate.values())), batch_size=256, verbose=0)[:, 0]
        chosen.update(p=dict(zip(evaluate, np.split(p_all, np.cumsum(sizes)[:-1]))), grid=tried,
                      seconds=time.perf_counter() - t0)
        return chosen
