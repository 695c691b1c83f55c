"""dlbook.gpt: shapes, parameter count, equivalent variants, schedule, sampling, saving."""

import dataclasses
import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlbook import devices, gpt  # noqa: E402

TINY = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


def tiny_ids(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, TINY.vocab_size, size=(n, TINY.block_size)).astype("int32")


@pytest.mark.parametrize("attention", ["fused", "by_hand", "keras"])
def test_shapes_and_parameter_count(attention):
    cfg = dataclasses.replace(TINY, attention=attention)
    model = gpt.build_gpt(cfg)
    assert model.count_params() == cfg.num_params()
    logits = model.predict_on_batch(tiny_ids())
    assert logits.shape == (4, TINY.block_size, TINY.vocab_size)


def test_recipes_match_nanogpt_sizes():
    cpu, _ = gpt.recipe("cpu")
    assert cpu.num_params(include_positions=False) == 795_904  # nanoGPT prints 0.80M
    gpu, _ = gpt.recipe("gpu")
    assert 10.5e6 < gpu.num_params(include_positions=False) < 10.8e6  # nanoGPT: 10.65M
    assert gpt.QUALITY_BAR["cpu"] == 1.95 and gpt.QUALITY_BAR["gpu"] == 1.60
    _, gpu_train = gpt.recipe("gpu")
    assert gpu_train.steps == gpu_train.decay_steps == 1000  # nanoGPT's 5,000, cut to fit a Colab T4
    assert cpu.flops_per_token() == 6 * 795_904 + 12 * 4 * 64 * 128


def test_variants_compute_the_same_function():
    base = gpt.build_gpt(TINY)
    x = tiny_ids()
    ref = keras.ops.convert_to_numpy(base(x))
    for change in ({"attention": "by_hand"}, {"flat_mlp": False}):
        other = gpt.build_gpt(dataclasses.replace(TINY, **change))
        other.set_weights(base.get_weights())
        np.testing.assert_allclose(keras.ops.convert_to_numpy(other(x)), ref, atol=1e-5)


def test_causality():
    model = gpt.build_gpt(TINY)
    x = tiny_ids(1)
    y = x.copy()
    y[0, 5:] = (y[0, 5:] + 1) % TINY.vocab_size  # change the future only
    a, b = (keras.ops.convert_to_numpy(model(v)) for v in (x, y))
    np.testing.assert_allclose(a[0, :5], b[0, :5], atol=1e-6)
    assert np.abs(a[0, 5:] - b[0, 5:]).max() > 1e-4


def test_schedule_and_weight_decay_exclusion():
    cfg = gpt.TrainConfig(steps=200, learning_rate=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=200)
    lr = gpt.learning_rate_schedule(cfg)
    assert float(lr(0)) == 0.0
    assert float(lr(10)) == pytest.approx(1e-3, rel=1e-5)
    assert float(lr(200)) == pytest.approx(1e-4, rel=1e-4)
    assert float(lr(1000)) == pytest.approx(1e-4, rel=1e-4)
    model = gpt.build_gpt(TINY)
    opt = gpt.make_optimizer(model, cfg)
    for v in model.trainable_variables:
        assert opt._use_weight_decay(v) == (len(v.shape) >= 2)


def test_short_training_lowers_the_loss():
    rng = np.random.default_rng(0)
    ids = np.tile(np.arange(TINY.vocab_size, dtype=np.int32), 200)  # a cycle: learnable
    cfg = gpt.TrainConfig(steps=60, batch_size=8, learning_rate=1e-2, min_lr=1e-3, warmup_steps=5,
                          decay_steps=60, eval_every=30, eval_windows=16, steps_per_execution=10,
                          jit_compile=False)
    model = gpt.compile_gpt(gpt.build_gpt(TINY), cfg)
    result = gpt.train_gpt(model, ids, ids, cfg, seed=1, log=None)
    assert result.steps == [30, 60]
    assert result.val_loss[-1] < 0.5 * math.log(TINY.vocab_size)
    assert result.seconds_to(10.0) == result.seconds[0] and result.seconds_to(-1) is None
    assert result.steady_tokens_per_second > 0
    x, y = gpt.validation_windows(ids, 16, TINY.block_size)
    assert gpt.evaluate(model, x, y) == pytest.approx(result.val_loss[-1], abs=0.05)
    del rng


def test_sample_next():
    rng = np.random.default_rng(0)
    logits = np.array([0.0, 3.0, 1.0, 2.0])
    assert gpt.sample_next(logits, rng, temperature=0) == 1
    assert gpt.sample_next(logits, rng, top_k=1) == 1
    draws = {gpt.sample_next(logits, rng, top_k=2) for _ in range(200)}
    assert draws == {1, 3}
    cold = [gpt.sample_next(logits, rng, temperature=0.05) for _ in range(50)]
    assert set(cold) == {1}


def test_generate_is_reproducible_and_survives_save_and_load(tmp_path):
    model = gpt.build_gpt(TINY)
    prompt = np.array([1, 2, 3], dtype=np.int32)
    a = gpt.generate(model, prompt, 12, temperature=0.8, top_k=5, seed=7)
    assert len(a) == 15 and (a[:3] == prompt).all()
    np.testing.assert_array_equal(a, gpt.generate(model, prompt, 12, temperature=0.8, top_k=5, seed=7))
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(a, gpt.generate(loaded, prompt, 12, temperature=0.8, top_k=5, seed=7))


def test_peak_flops_and_mfu():
    assert devices.peak_flops("GPU (NVIDIA H100 80GB HBM3) x1") == ("H100", 989e12)
    assert devices.peak_flops("CPU (x86_64, 2 cores)") is None
    cfg = gpt.recipe("cpu")[0]
    assert gpt.model_flops_utilisation(cfg, 1e6, cfg.flops_per_token() * 2e6) == pytest.approx(0.5)


def test_time_variants():
    cfg = gpt.TrainConfig(jit_compile=False, steps_per_execution=2)
    a = gpt.compile_gpt(gpt.build_gpt(TINY), cfg)
    b = gpt.compile_gpt(gpt.build_gpt(TINY), cfg)
    x = tiny_ids(8)
    stats = gpt.time_variants({"fit": (a, False), "per batch": (b, True)}, x, x, batch_size=4, repeats=2)
    assert set(stats) == {"fit", "per batch"}
    for s in stats.values():
        assert s["step_s"] > 0 and s["compile_s"] > 0
        assert s["tokens_per_s"] == pytest.approx(4 * TINY.block_size / s["step_s"])


def test_trains_on_jax_where_tensorflow_is_absent(tmp_path):
    """The GPU machine has JAX but no TensorFlow: chapter 8's code must train and save there."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "import numpy as np\n"
        "from dlbook import charlm, gpt, attention, bench\n"
        "cfg = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)\n"
        "tcfg = gpt.TrainConfig(steps=4, batch_size=2, warmup_steps=1, decay_steps=4, eval_every=2,\n"
        "                       eval_windows=4, steps_per_execution=2)\n"
        "model = gpt.compile_gpt(gpt.build_gpt(cfg), tcfg)\n"
        "ids = np.random.default_rng(0).integers(0, 11, 500).astype('int32')\n"
        "result = gpt.train_gpt(model, ids, ids, tcfg, log=None)\n"
        f"model.save({str(tmp_path / 'm.keras')!r})\n"
        "assert np.isfinite(result.val_loss[-1])\n"
        "print('ok', 'tensorflow' in sys.modules and sys.modules['tensorflow'] is not None)"
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "ok False"


def test_training_keeps_the_best_weights(monkeypatch):
    """When the validation loss turns up, train_gpt puts back the weights of its best evaluation."""
    ids = np.tile(np.arange(TINY.vocab_size, dtype=np.int32), 200)
    cfg = gpt.TrainConfig(steps=30, batch_size=4, learning_rate=1e-3, min_lr=1e-4, warmup_steps=1,
                          decay_steps=30, eval_every=10, eval_windows=8, steps_per_execution=5, jit_compile=False)
    model = gpt.compile_gpt(gpt.build_gpt(TINY), cfg)
    # each evaluation measures the validation windows, then the training windows (9.0 here)
    scripted = iter([2.0, 9.0, 1.0, 9.0, 3.0, 9.0])  # the second evaluation is the best
    snapshots = []
    real_evaluate = gpt.evaluate

    def fake_evaluate(m, x, y, max_batch=64):
        snapshots.append([w.copy() for w in m.get_weights()])
        real_evaluate(m, x, y, max_batch)
        return next(scripted)

    monkeypatch.setattr(gpt, "evaluate", fake_evaluate)
    result = gpt.train_gpt(model, ids, ids, cfg, log=None)
    assert result.best_val == 1.0 and result.best_step == 20 and result.restored_best
    assert result.train_eval_loss == [9.0, 9.0, 9.0]
    for now, kept in zip(model.get_weights(), snapshots[2]):
        np.testing.assert_array_equal(now, kept)
    model2 = gpt.compile_gpt(gpt.build_gpt(TINY), cfg)
    scripted = iter([3.0, 9.0, 2.0, 9.0, 1.0, 9.0])  # improving to the end: nothing to put back
    result = gpt.train_gpt(model2, ids, ids, cfg, log=None)
    assert result.best_step == 30 and not result.restored_best
