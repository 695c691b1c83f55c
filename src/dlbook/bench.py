"""Benchmarks outside the notebooks: ``python -m dlbook.bench gpt --profile cpu``.

Trains chapter 8's GPT from the same code (:mod:`dlbook.gpt`) on Tiny
Shakespeare with the recipe of a run profile and prints one line: parameters,
steps, seconds to validation loss 2.0, final validation loss, tokens per
second (and model FLOPs utilisation on a known GPU). Use it to compare with a
peer (nanoGPT) on the same machine in the same sitting. The Keras backend comes
from ``KERAS_BACKEND``; ``--threads`` caps the CPU threads the backend uses.
"""

from __future__ import annotations

import argparse
import os
import sys


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
    from . import data, runtime
    from .profiles import Profile

    runtime.quiet_environment()
    backend = runtime.import_backend()
    profile = Profile(args.profile, args.seed)
    runtime.seed_everything(profile.seed)

    import keras

    from . import charlm, gpt

    model_cfg, train_cfg = gpt.recipe(profile.name)
    if args.steps:
        train_cfg = gpt.replace(train_cfg, steps=args.steps, decay_steps=max(args.steps, train_cfg.warmup_steps + 1))
    if args.profile == "gpu":
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    text = data.load_shakespeare()
    vocab = charlm.CharVocab.from_text(text)
    train_ids, val_ids = charlm.train_val_split(vocab.encode(text))
    model_cfg = gpt.replace(model_cfg, vocab_size=vocab.size)
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
    device = runtime.device_description()
    to_2 = result.seconds_to(2.0)
    tps = result.steady_tokens_per_second
    line = (
        f"gpt {profile.name} | {backend} | {device} | params {model.count_params():,} | "
        f"steps {train_cfg.steps} | to val 2.0: {'%.1f s' % to_2 if to_2 is not None else 'not reached'} | "
        f"final val {result.val_loss[-1]:.3f} (train {result.train_loss[-1]:.3f}) | "
        f"{tps:,.0f} tokens/s | total {result.total_seconds:.1f} s"
    )
    peak = gpt.peak_flops(device)
    if peak:
        line += f" | MFU {gpt.model_flops_utilisation(model_cfg, tps, peak[1]):.1%} of {peak[0]} {peak[1] / 1e12:.0f} TFLOP/s"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlbook.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("gpt", help="train chapter 8's GPT on Tiny Shakespeare and print one line")
    p.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default="cpu")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--steps", type=int, default=0, help="override the recipe's number of steps")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for the backend (0: its default)")
    p.add_argument("--verbose", action="store_true", help="print a line per evaluation")
    p.add_argument("--throughput", type=int, default=0, metavar="STEPS",
                   help="only time STEPS training steps (after compiling) and print tokens/s")
    args = parser.parse_args(argv)
    if args.threads:
        set_threads(args.threads)
    print(bench_gpt(args), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
