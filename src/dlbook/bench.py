"""Benchmarks outside the notebooks: ``python -m dlbook.bench gpt --profile cpu``.

``python -m dlbook.bench text --profile gpu --ids FILE.npz`` pretrains and
fine-tunes chapter 9's encoder (:mod:`dlbook.encoder`) from a cached token-id
file (:mod:`dlbook.token_ids`), so it runs where TensorFlow is absent.

Trains chapter 8's GPT from the same code (:mod:`dlbook.gpt`) on Tiny
Shakespeare with the recipe of a run profile and prints one line: parameters,
steps, seconds to validation loss 2.0, final validation loss, tokens per
second (and model FLOPs utilisation on a known GPU). Use it to compare with a
peer (nanoGPT) on the same machine in the same sitting. The Keras backend comes
from ``KERAS_BACKEND``; ``--threads`` caps the CPU threads the backend uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from .profiles import DEFAULT_SEED, PROFILES


def set_threads(threads: int) -> None:
    """Cap the CPU threads of TensorFlow and XLA (call before importing Keras).

    TensorFlow reads its pool sizes from ``TF_NUM_INTRAOP_THREADS`` and
    ``TF_NUM_INTEROP_THREADS``. XLA on a CPU (JAX, and TensorFlow with
    ``jit_compile``) can only be switched to one thread; with more than one it
    uses every core, so for ``threads > 1`` its flags are left alone.
    """
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()


def bench_gpt(args: argparse.Namespace) -> str:
    """Train the GPT of ``args.profile``; return the one-line summary."""
    from . import data, devices, runtime
    from .profiles import Profile

    devices.quiet_environment()
    backend = devices.import_backend()
    profile = Profile(args.profile, args.seed)
    runtime.seed_everything(profile.seed)

    import keras

    from . import charlm, gpt

    model_cfg, train_cfg = gpt.recipe(profile.name)
    if args.steps:
        train_cfg = dataclasses.replace(train_cfg, steps=args.steps, decay_steps=max(args.steps, train_cfg.warmup_steps + 1))
    if args.profile == "gpu":  # bfloat16 from Ampere on, float16 with loss scaling before
        keras.mixed_precision.set_dtype_policy(runtime.mixed_precision_policy())
    text = data.load_shakespeare()
    vocab = charlm.CharVocab.from_text(text)
    train_ids, val_ids = charlm.train_val_split(vocab.encode(text))
    model_cfg = dataclasses.replace(model_cfg, vocab_size=vocab.size)
    model = gpt.compile_gpt(gpt.build_gpt(model_cfg), train_cfg)
    if args.throughput:
        import numpy as np

        spe = min(train_cfg.steps_per_execution, args.throughput)
        model = gpt.compile_gpt(model, train_cfg, steps_per_execution=spe)
        x, y = charlm.random_windows(train_ids, args.throughput * train_cfg.batch_size, model_cfg.block_size,
                                     np.random.default_rng(profile.seed))
        stats = gpt.time_variants({"model": (model, False)}, x, y, train_cfg.batch_size)["model"]
        return (f"gpt throughput {profile.name} | {backend} | threads {args.threads or 'default'} | "
                f"{stats['step_s'] * 1000:.1f} ms/step | {stats['tokens_per_s']:,.0f} tokens/s")
    log = print if args.verbose else None
    result = gpt.train_gpt(model, train_ids, val_ids, train_cfg, seed=profile.seed, log=log)
    device = devices.device_description()
    to_2 = result.seconds_to(2.0)
    tps = result.steady_tokens_per_second
    line = (
        f"gpt {profile.name} | {backend} | {device} | params {model.count_params():,} | "
        f"steps {train_cfg.steps} | to val 2.0: {'%.1f s' % to_2 if to_2 is not None else 'not reached'} | "
        f"best val {result.best_val:.3f} at step {result.best_step} | "
        f"final val {result.val_loss[-1]:.3f} (train {result.train_eval_loss[-1]:.3f}) | "
        f"{tps:,.0f} tokens/s | total {result.total_seconds:.1f} s"
    )
    peak = devices.peak_flops(device)
    if peak:
        line += f" | MFU {gpt.model_flops_utilisation(model_cfg, tps, peak[1]):.1%} of {peak[0]} {peak[1] / 1e12:.0f} TFLOP/s"
    return line


def load_ids(path: str) -> dict:
    """Token-id arrays saved by chapter 9 (or a compact copy: uint16, cut to the
    encoder's length), as int32 id arrays, float labels and the vocabulary."""
    from .token_ids import read_token_ids

    arrays = read_token_ids(path)
    for k in ("train", "val", "test", "unsup"):
        arrays[k] = arrays[k].astype("int32")
    return arrays


def paired_runs(tuner, cut: dict, ids: dict, n: int, subsets: int, rng) -> list[dict]:
    """Chapter 9's fair protocol on ``subsets`` random draws of ``n`` labelled
    rows: for each draw, both arms (pretrained and from scratch) chosen on the
    validation set by :meth:`dlbook.encoder.FineTuner.select` (its learning-rate
    grid and early stopping), then the test set scored once. Returns per draw
    the two test accuracies and the steps each kept."""
    import numpy as np

    runs = []
    for k in range(subsets):
        rows = rng.permutation(len(cut["train"]))[:n]
        run = {}
        for pretrained, arm in ((True, "pretrained"), (False, "scratch")):
            r = tuner.select(pretrained, cut["train"], ids["y_train"], rows, seed=1000 * k + n,
                             val=(cut["val"], ids["y_val"]), evaluate={"test": cut["test"]})
            run[arm] = round(float(np.mean((r["p"]["test"] > 0.5) == ids["y_test"])), 4)
            run[f"{arm} steps"] = r["best_step"]
        runs.append(run)
    return runs


def paired_summary(runs: list[dict]) -> dict:
    """Mean test accuracy of each arm over the draws, and the paired gain in
    points with its standard error (NaN for one draw)."""
    import math

    gains = [100 * (r["pretrained"] - r["scratch"]) for r in runs]
    mean = sum(gains) / len(gains)
    sd = math.sqrt(sum((g - mean) ** 2 for g in gains) / (len(gains) - 1)) if len(gains) > 1 else float("nan")
    return dict(pretrained=sum(r["pretrained"] for r in runs) / len(runs),
                scratch=sum(r["scratch"] for r in runs) / len(runs),
                gain=round(mean, 2), gain_se=round(sd / math.sqrt(len(gains)), 2))


def bench_text(args: argparse.Namespace) -> str:
    """Pretrain chapter 9's encoder with masked LM, fine-tune it and the same
    network from scratch on 100, 1,000 and all labels (``--subsets`` paired
    draws below all, each arm chosen on validation as in the chapter); return a
    summary: each arm's mean test accuracy and the paired mean gain with its
    standard error."""
    from . import devices, runtime
    from .profiles import Profile

    devices.quiet_environment()
    backend = devices.import_backend()
    profile = Profile(args.profile, args.seed)
    runtime.seed_everything(profile.seed)

    import datetime
    import json

    import keras
    import numpy as np

    from . import encoder as enc

    ids = load_ids(args.ids)
    vocab = len(ids["vocabulary"])
    cfg, pre, ft = enc.recipe(profile.name, vocab_size=vocab)
    if args.sequences:
        pre = dataclasses.replace(pre, sequences=args.sequences, chunk=min(pre.chunk, args.sequences))
    rng = np.random.default_rng(profile.seed)
    cut = {k: ids[k][:, : cfg.length] for k in ("train", "val", "test", "unsup")}
    x_pre = enc.pretraining_rows([cut["train"], cut["unsup"]], cfg)
    keras.utils.set_random_seed(profile.seed)
    encoder = enc.build_encoder(cfg)
    mlm = enc.compile_mlm(enc.build_mlm(encoder, cfg), pre)
    log = print if args.verbose else None
    pre_log = enc.pretrain(mlm, x_pre, cfg, pre, rng, log=log)
    val_loss, val_top1 = enc.masked_lm_scores(mlm, cut["val"], cfg)
    unigram = enc.unigram_entropy(x_pre, vocab)
    device = devices.device_description()
    out = dict(date=datetime.date.today().isoformat(), profile=profile.name, backend=backend, device=device, seed=profile.seed,
               encoder_params=encoder.count_params(), pretrain_sequences=pre.sequences,
               pretrain_tokens=pre_log.tokens, pretrain_seconds=round(pre_log.seconds, 1),
               tokens_per_s=round(pre_log.tokens_per_second), val_mlm_loss=round(val_loss, 4),
               val_top1=round(val_top1, 4), unigram_entropy=round(unigram, 4), finetune={})
    lines = [f"text {profile.name} | {backend} | {device} | encoder {out['encoder_params']:,} params | "
             f"pretraining {pre_log.tokens / 1e6:.1f}M tokens in {pre_log.seconds:.1f} s, "
             f"{pre_log.tokens_per_second:,.0f} tokens/s | val masked-LM {val_loss:.3f} (unigram {unigram:.3f}), "
             f"top-1 {val_top1:.1%}"]
    tuner = enc.FineTuner(cfg, ft, encoder.get_weights(), seed=profile.seed)
    n_all = len(cut["train"])
    labels = [int(n) for n in args.labels.split(",")] if args.labels else [100, 1000, n_all]
    for n in sorted({min(n, n_all) for n in labels}):
        k = args.subsets if n < n_all else 1  # one set of all the labels
        runs = paired_runs(tuner, cut, ids, n, k, rng)
        summary = paired_summary(runs)
        for arm in ("pretrained", "scratch"):
            out["finetune"][f"{n} {arm}"] = dict(test=round(summary[arm], 4), subsets=[r[arm] for r in runs],
                                                 steps=[r[f"{arm} steps"] for r in runs])
        out["finetune"][f"{n} gain"] = dict(mean=summary["gain"], se=summary["gain_se"], subsets=k)
        se = "" if k < 2 else f" +- {summary['gain_se']:.1f}"
        lines.append(f"  {n:6,} labels ({k} subset{'s' * (k > 1)}): pretrained {summary['pretrained']:.4f}, "
                     f"scratch {summary['scratch']:.4f}, paired gain {summary['gain']:+.1f}{se} points")
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(out) + "\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlbook.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("gpt", help="train chapter 8's GPT on Tiny Shakespeare and print one line")
    p.add_argument("--profile", choices=PROFILES, default="cpu")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--steps", type=int, default=0, help="override the recipe's number of steps")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for the backend (0: its default)")
    p.add_argument("--verbose", action="store_true", help="print a line per evaluation")
    p.add_argument("--throughput", type=int, default=0, metavar="STEPS",
                   help="only time STEPS training steps (after compiling) and print tokens/s")
    t = sub.add_parser("text", help="pretrain and fine-tune chapter 9's encoder from a token-id file")
    t.add_argument("--ids", required=True, help="the .npz of token ids (chapter 9's cache, or a compact copy)")
    t.add_argument("--profile", choices=PROFILES, default="cpu")
    t.add_argument("--seed", type=int, default=DEFAULT_SEED)
    t.add_argument("--sequences", type=int, default=0, help="override the recipe's pretraining sequences")
    t.add_argument("--labels", default="", help="comma-separated label counts (default: 100,1000,all)")
    t.add_argument("--subsets", type=int, default=3, help="random label subsets per count below all (paired)")
    t.add_argument("--json", default="", help="append the figures as one JSON line to this file")
    t.add_argument("--verbose", action="store_true", help="print the loss of each pretraining chunk")
    args = parser.parse_args(argv)
    if getattr(args, "threads", 0):
        set_threads(args.threads)
    print(bench_gpt(args) if args.what == "gpt" else bench_text(args), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
