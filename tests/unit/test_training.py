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


def test_epoch_log_times_every_epoch_and_prints_a_few_plain_lines(capsys):
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    log = training.EpochLog("tiny", lines=2, metrics=("loss", "val_loss"))
    model.fit(x, x[:, :1], epochs=5, batch_size=16, verbose=0, validation_split=0.25, callbacks=[log])
    assert len(log.seconds) == len(log.elapsed) == 5
    assert all(s > 0 for s in log.seconds)
    assert np.all(np.diff(log.elapsed) > 0) and log.elapsed[-1] >= sum(log.seconds) * 0.99
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1].split()[0] for line in lines] == ["1/5", "3/5", "5/5"]
    assert "loss" in lines[0] and "val_loss" in lines[0] and "left" in lines[0]
    assert lines[-1].endswith("elapsed")


def test_epoch_log_can_be_silent(capsys):
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    log = training.EpochLog(lines=0)
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0, callbacks=[log])
    assert len(log.seconds) == 2 and capsys.readouterr().out == ""
