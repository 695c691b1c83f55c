"""dlbook.training: putting a compiled model back to its starting point."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlbook import gpt, training  # noqa: E402

TINY = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


def tiny_ids(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, TINY.vocab_size, size=(n, TINY.block_size)).astype("int32")


def test_reset_training_state():
    cfg = gpt.TrainConfig(jit_compile=False, steps_per_execution=1)
    model = gpt.compile_gpt(gpt.build_gpt(TINY), cfg)
    w0 = model.get_weights()
    x = tiny_ids(8)
    model.fit(x, x, batch_size=4, verbose=0)
    assert int(model.optimizer.iterations) == 2
    training.reset_training_state(model, w0)
    assert int(model.optimizer.iterations) == 0
    for a, b in zip(model.get_weights(), w0):
        np.testing.assert_array_equal(a, b)


def test_reset_keeps_a_fixed_learning_rate_and_replays_dropout():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dropout(0.5)(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    start, seeds = model.get_weights(), training.seed_states(model)
    assert seeds, "the dropout layer's seed state is found"
    x, y = np.random.default_rng(0).normal(size=(16, 6)), np.zeros((16, 1))
    runs = []
    for _ in range(2):
        training.reset_training_state(model, start, seeds)
        model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
        runs.append(model.get_weights())
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, atol=1e-6)  # same start, same masks: the same run
    training.reset_training_state(model, start)  # without the seed states the masks move on
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    assert any(np.abs(a - b).max() > 1e-6 for a, b in zip(model.get_weights(), runs[0]))


def test_reset_restores_the_loss_scale_under_float16():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, dtype="mixed_float16")])
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0**10)
    model.compile(optimizer=optimizer, loss="mse")
    w0 = model.get_weights()
    x = np.ones((4, 3), "float32")
    model.fit(x, np.zeros((4, 2), "float32"), verbose=0)
    training.reset_training_state(model, w0)
    assert float(model.optimizer.dynamic_scale) == 2.0**10, "a zero loss scale stops every update"
    model.fit(x, np.zeros((4, 2), "float32"), verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), w0)), "training went on"
