"""dlbook.encoder: masking, shapes, padding, tied output, pretraining and fine-tuning restarts."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlbook import encoder as enc  # noqa: E402

TINY = enc.EncoderConfig(vocab_size=50, length=20, dim=16, heads=2, ff=32, blocks=1)


def padded_ids(rows=8, seed=0):
    """Random ids 2..49 with a random amount of trailing padding (at least 4 real tokens)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2, TINY.vocab_size, (rows, TINY.length)).astype("int32")
    for i, n in enumerate(rng.integers(4, TINY.length + 1, rows)):
        x[i, n:] = 0
    return x


def test_recipes_differ_by_profile_and_keep_the_vocabulary():
    for name in ("smoke", "cpu", "gpu"):
        cfg, pre, ft = enc.recipe(name, vocab_size=123)
        assert cfg.vocab_size == 123 and cfg.mask_id == 123
        assert cfg.dim % cfg.heads == 0 and pre.sequences % pre.chunk == 0 and ft.lr > 0
    assert enc.recipe("gpu", 10)[0].dim > enc.recipe("cpu", 10)[0].dim > enc.recipe("smoke", 10)[0].dim


def test_pretraining_rows_and_unigram_entropy():
    a = np.array([[3, 4, 0, 0], [5, 0, 0, 0]], dtype="int32")
    b = np.array([[2, 2, 2, 9]], dtype="int32")
    cfg = dataclasses.replace(TINY, length=3)
    rows = enc.pretraining_rows([a, b], cfg, min_tokens=2)
    np.testing.assert_array_equal(rows, [[3, 4, 0], [2, 2, 2]])  # cut to 3 tokens; the 1-token row dropped
    assert enc.unigram_entropy(rows, 10) == pytest.approx(-(2 * 0.2 * np.log(0.2) + 0.6 * np.log(0.6)))
    assert enc.unigram_entropy(np.array([[7, 7, 0]]), 10) == 0.0


def test_mask_tokens_follows_bert():
    x = np.tile(np.arange(2, 22, dtype="int32"), (2000, 1))  # full rows of 20 real tokens
    cfg = dataclasses.replace(TINY, length=20)
    corrupted, pos, tgt, wts = enc.mask_tokens(x, np.random.default_rng(0), cfg)
    n_pred = enc.n_predictions(cfg)
    assert pos.shape == tgt.shape == wts.shape == (2000, n_pred) == (2000, 3)
    assert np.all(wts == 1)  # 15% of 20 tokens is 3: every slot used
    assert np.array_equal(np.take_along_axis(x, pos, axis=1), tgt)  # targets are the original ids
    assert all(len(set(row)) == n_pred for row in pos)  # distinct positions
    new = np.take_along_axis(corrupted, pos, axis=1)
    share_mask = np.mean(new == cfg.mask_id)
    share_same = np.mean(new == tgt)
    assert 0.77 < share_mask < 0.83 and 0.09 < share_same < 0.13  # 80% [MASK]; 10% kept (+ random hits)
    untouched = np.ones_like(x, bool)
    np.put_along_axis(untouched, pos, False, axis=1)
    assert np.array_equal(corrupted[untouched], x[untouched])  # nothing else changes


def test_mask_tokens_never_chooses_padding():
    x = padded_ids(200)
    corrupted, pos, tgt, wts = enc.mask_tokens(x, np.random.default_rng(1), TINY)
    chosen = np.take_along_axis(x, pos, axis=1)
    assert np.all(chosen[wts == 1] != 0)
    assert np.array_equal(corrupted == 0, x == 0)  # padding stays padding
    assert np.all(wts.sum(axis=1) == np.maximum(1, np.round(0.15 * (x != 0).sum(axis=1))))


def test_padding_does_not_change_the_real_positions():
    """Padded keys are masked: whatever vector padding has, the real positions' outputs stay the same."""
    keras.utils.set_random_seed(0)
    model = enc.build_encoder(TINY)
    x = padded_ids(4)
    x[0, 10:] = 0
    before = keras.ops.convert_to_numpy(model(x))
    table = model.get_layer("embed").tokens.embeddings
    values = keras.ops.convert_to_numpy(table).copy()
    values[0] = 10 * np.random.default_rng(1).standard_normal(TINY.dim)  # a different padding vector
    table.assign(values)
    after = keras.ops.convert_to_numpy(model(x))
    real = x != 0
    assert before.shape == (4, TINY.length, TINY.dim)
    np.testing.assert_allclose(before[real], after[real], atol=1e-5)
    assert np.abs(before[~real] - after[~real]).max() > 1e-3  # (the padding positions themselves change)
    values[x[0, 0]] += np.random.default_rng(2).standard_normal(TINY.dim)  # a real token's vector matters
    table.assign(values)
    changed = keras.ops.convert_to_numpy(model(x))
    assert np.abs(changed[real] - after[real]).max() > 1e-4


def test_mlm_output_is_tied_to_the_token_embedding():
    keras.utils.set_random_seed(0)
    encoder = enc.build_encoder(TINY)
    mlm = enc.build_mlm(encoder, TINY)
    x = padded_ids(4)
    corrupted, pos, tgt, wts = enc.mask_tokens(x, np.random.default_rng(0), TINY)
    logits = mlm.predict([corrupted, pos], verbose=0)
    assert logits.shape == (4, enc.n_predictions(TINY), TINY.vocab_size)  # no logit for [MASK]
    table = encoder.get_layer("embed").tokens.embeddings
    own = [v for v in mlm.trainable_variables if v.path.startswith("tied_output")]
    assert [tuple(v.shape) for v in own] == [(TINY.vocab_size,)]  # only a bias: the matrix is shared
    assert any(v is table for v in mlm.trainable_variables)


def test_pretraining_lowers_the_masked_lm_loss():
    cfg = TINY
    pre = enc.PretrainConfig(sequences=1024, batch=32, chunk=256, lr=3e-3)
    base = np.tile(np.arange(2, 22, dtype="int32"), (400, 1))  # one repeated sentence: learnable
    keras.utils.set_random_seed(0)
    encoder = enc.build_encoder(cfg)
    mlm = enc.compile_mlm(enc.build_mlm(encoder, cfg), pre)
    before, _ = enc.masked_lm_scores(mlm, base[:64], cfg)
    log = enc.pretrain(mlm, base, cfg, pre, np.random.default_rng(0), log=None)
    after, top1 = enc.masked_lm_scores(mlm, base[:64], cfg)
    assert log.seen == [256, 512, 768, 1024] and log.tokens == 1024 * cfg.length
    assert log.tokens_per_second > 0
    assert after < before - 0.5 and top1 > 0.3, (before, after, top1)


def test_fine_tuner_restarts_from_exactly_the_same_point():
    keras.utils.set_random_seed(0)
    pretrained = enc.build_encoder(TINY).get_weights()
    ft = enc.FinetuneConfig(min_steps=6, epochs=1, lr=1e-2, batch=8)
    tuner = enc.FineTuner(TINY, ft, pretrained, seed=0)
    x = padded_ids(64, seed=3)
    y = (x[:, 0] > 25).astype("float32")  # the label is in the first token
    rows = np.arange(40)
    assert tuner.steps_for(40) == 6 and tuner.steps_for(400) == 50
    feed = tuner.feed(rows, seed=1)
    assert len(feed) == 48 and set(feed) == set(rows)
    runs = [tuner.run(True, x, y, rows, seed=1, evaluate={"rest": x[40:]}) for _ in range(2)]
    np.testing.assert_allclose(runs[0]["p"]["rest"], runs[1]["p"]["rest"], atol=1e-5)  # a true restart
    assert runs[0]["loss_after"] < runs[0]["loss_before"] and runs[0]["steps"] == 6
    scratch = tuner.run(False, x, y, rows, seed=1, evaluate={"rest": x[40:], "again": x[40:]})
    assert np.abs(scratch["p"]["rest"] - runs[0]["p"]["rest"]).max() > 1e-4  # a different start
    np.testing.assert_allclose(scratch["p"]["rest"], scratch["p"]["again"])


def test_text_benchmark_runs_on_jax_where_tensorflow_is_absent(tmp_path):
    """The GPU machine has JAX but no TensorFlow: the benchmark must run from an id file there."""
    pytest.importorskip("jax")
    rng = np.random.default_rng(0)
    vocab = np.array(["", "[UNK]"] + [f"w{i}" for i in range(98)])
    ids = {k: rng.integers(2, 100, (n, 80)).astype("uint16") for k, n in
           (("train", 96), ("val", 32), ("test", 32), ("unsup", 64))}
    ids.update(vocabulary=vocab, y_train=rng.integers(0, 2, 96), y_val=rng.integers(0, 2, 32),
               y_test=rng.integers(0, 2, 32))
    np.savez(tmp_path / "ids.npz", **ids)
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from dlbook.bench import main\n"
            f"main(['text', '--profile', 'smoke', '--ids', {str(tmp_path / 'ids.npz')!r}, '--sequences', '128',"
            f" '--labels', '32,100', '--subsets', '2', '--json', {str(tmp_path / 'out.jsonl')!r}])\n"
            "print('tensorflow imported:', sys.modules['tensorflow'] is not None)")
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pretraining" in out.stdout and "gain" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "tensorflow imported: False"
    import json

    record = json.loads((tmp_path / "out.jsonl").read_text())
    assert record["backend"] == "jax"
    assert set(record["finetune"]) == {f"{n} {w}" for n in (32, 96) for w in ("pretrained", "scratch", "gain")}  # 100 > 96
    assert len(record["finetune"]["32 scratch"]["subsets"]) == 2 and record["finetune"]["96 gain"]["subsets"] == 1
    pairs = zip(record["finetune"]["32 pretrained"]["subsets"], record["finetune"]["32 scratch"]["subsets"])
    assert abs(record["finetune"]["32 gain"]["mean"] - 50 * sum(a - b for a, b in pairs)) < 0.01  # paired mean, points


def test_select_tries_each_learning_rate_and_scores_the_test_set_once():
    keras.utils.set_random_seed(0)
    pretrained = enc.build_encoder(TINY).get_weights()
    ft = enc.FinetuneConfig(min_steps=8, epochs=1, lr=1e-2, batch=8, lrs=(1e-4, 1e-2), checks=4, patience=1)
    assert ft.grid == (1e-4, 1e-2) and enc.FinetuneConfig(1, 1, 3e-4).grid == (3e-4,)
    tuner = enc.FineTuner(TINY, ft, pretrained, seed=0)
    x = padded_ids(96, seed=3)
    y = (x[:, 0] > 25).astype("float32")
    rows, val = np.arange(48), (x[48:72], y[48:72])
    one = tuner.run(True, x, y, rows, seed=1, evaluate={}, lr=1e-2, val=val)
    assert one["p"] == {} and one["lr"] == 1e-2 and 2 <= one["best_step"] <= one["steps"] <= 8
    assert one["val"] == tuner.accuracy(*val)  # the kept weights are the best check's
    chosen = tuner.select(True, x, y, rows, seed=1, val=val, evaluate={"test": x[72:]})
    assert set(chosen["grid"]) == {1e-4, 1e-2} and chosen["p"]["test"].shape == (24,)
    assert chosen["val"] == max(v for v, _ in chosen["grid"].values())
    assert chosen["lr"] == max(chosen["grid"], key=lambda lr: (chosen["grid"][lr][0], -ft.grid.index(lr)))
    np.testing.assert_allclose(chosen["p"]["test"], tuner.model.predict(x[72:], verbose=0)[:, 0], atol=1e-6)
