"""How long a chapter's run would take on a GPU it was not run on: FLOPs over an assumed rate.

The book's chapters are opened in Google Colab, whose free GPU is an NVIDIA T4.
Its ``gpu`` profiles are sized so that they finish there in under 20 minutes,
but no T4 was measured: the time is estimated. Each chapter counts the
floating-point operations of what it computes (training, timing runs,
evaluation) from its layer shapes, divides them by an achievable T4 rate, and
adds the non-arithmetic time it can see (compilations, one-at-a-time model
calls, an input pipeline bound to the CPU, installation and data download).

The rate, stated once here (:data:`T4_RATE`): the T4's datasheet peak of
65 TFLOP/s (dense float16 on its tensor cores) times the model FLOPs
utilisation the book measured on an H100 for chapter 8's GPT, 2.5% of its
989 TFLOP/s bfloat16 peak (``results/recorded_runs.csv``): about 1.6 TFLOP/s.
Small models on a data-centre GPU are bound by per-step overheads, not by
arithmetic, and a T4 is 15 times slower in arithmetic with the same overheads,
so it should use more of its peak than that: the estimates are meant as upper
bounds. float32 work (the timing runs that compare float32 with 16-bit
compute) is counted at the same rate, which is 20% of the T4's 8.1 TFLOP/s
float32 peak.

Plain Python: importing this module imports neither Keras nor a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

T4_PEAK_FLOPS = 65e12
"""NVIDIA T4, dense float16 on tensor cores, datasheet (FLOP/s)."""

T4_PEAK_FLOPS_FP32 = 8.1e12
"""NVIDIA T4, float32 (no tensor cores), datasheet (FLOP/s)."""

H100_PEAK_FLOPS = 989e12
"""NVIDIA H100 SXM, dense bfloat16, datasheet (FLOP/s)."""

H100_GPT_TOKENS_PER_S = 352_501
"""Chapter 8's gpu recipe on an H100 under JAX, mixed bfloat16, median training
throughput (``results/recorded_runs.csv``, 2026-11-26)."""

MEASURED_MFU = 0.025
"""The model FLOPs utilisation of that run, rounded: 70.96 MFLOP per token
(``GPTConfig.flops_per_token`` of the gpu recipe) x 352,501 tokens/s / 989
TFLOP/s = 2.53%. The only utilisation measured for this book's code on a GPU."""

T4_RATE = T4_PEAK_FLOPS * MEASURED_MFU
"""The assumed achievable rate on a T4: 65 TFLOP/s x 2.5% = 1.625 TFLOP/s."""

COMPILE_S = 20.0
"""Assumed seconds to compile one training step with XLA on Colab's two CPU cores."""

CALL_S = 0.010
"""Assumed fixed cost of one small model call from Python (``predict_on_batch``
of one example): the host round trip, not the arithmetic."""

SETUP_S = 60.0
"""Assumed seconds for the bootstrap cell's ``pip install`` and a chapter's
imports on a fresh Colab runtime."""

BUDGET_MIN = 20.0
"""Every gpu profile must finish on a Colab T4 in less than this (minutes)."""


# --------------------------------------------------------------------------
# FLOPs of layers (one example, forward; a multiply-add counts 2)


def conv2d_flops(out_size: int, kernel: int, c_in: int, c_out: int) -> float:
    """A ``kernel x kernel`` convolution from ``c_in`` to ``c_out`` channels with a
    square output of side ``out_size``."""
    return 2.0 * out_size * out_size * kernel * kernel * c_in * c_out


def conv_transpose2d_flops(in_size: int, kernel: int, c_in: int, c_out: int) -> float:
    """A transposed convolution: every input pixel scatters a ``kernel x kernel x
    c_out`` patch from its ``c_in`` channels."""
    return 2.0 * in_size * in_size * kernel * kernel * c_in * c_out


def dense_flops(n_in: int, n_out: int) -> float:
    """A dense layer (bias and activation, a few operations per unit, left out)."""
    return 2.0 * n_in * n_out


def small_resnet_flops(widths: Sequence[int] = (32, 64, 128), residual: Sequence[bool] = (True, True, True),
                       stem: int = 0, n_classes: int = 10, size: int = 32, **_) -> float:
    """Forward FLOPs per image of :func:`dlbook.vision.small_resnet` (3x3 "same"
    convolutions, a 2x2 max-pool after each stage's first convolution, a residual
    block of two convolutions where asked). Extra keywords (``bn_momentum``) are
    ignored, so a chapter's ``resnet_config`` can be passed as it is."""
    flops, channels = 0.0, 3
    if stem:
        flops += conv2d_flops(size, 3, channels, stem)
        channels = stem
    for width, has_block in zip(widths, residual):
        flops += conv2d_flops(size, 3, channels, width)
        size //= 2
        if has_block:
            flops += 2 * conv2d_flops(size, 3, width, width)
        channels = width
    return flops + dense_flops(channels, n_classes)


def source_cnn_flops(size: int = 32, n_out: int = 10) -> float:
    """Forward FLOPs per image of chapter 4's "source" network: three valid 3x3
    convolutions (32, 64, 128 channels) each with a 2x2 max-pool, Dense(512), Dense(n_out)."""
    flops, channels = 0.0, 3
    for width in (32, 64, 128):
        size -= 2
        flops += conv2d_flops(size, 3, channels, width)
        size //= 2
        channels = width
    flat = size * size * channels
    return flops + dense_flops(flat, 512) + dense_flops(512, n_out)


def dcgan_flops(latent_dim: int, width: int) -> tuple[float, float]:
    """Forward FLOPs per image of chapter 5's generator and discriminator (28x28 MNIST)."""
    generator = (dense_flops(latent_dim, 7 * 7 * 4 * width)
                 + conv_transpose2d_flops(7, 4, 4 * width, 2 * width)
                 + conv_transpose2d_flops(14, 4, 2 * width, width)
                 + conv2d_flops(28, 3, width, 1))
    discriminator = (conv2d_flops(14, 4, 1, width) + conv2d_flops(7, 4, width, 2 * width)
                     + dense_flops(7 * 7 * 2 * width, 1))
    return generator, discriminator


def gan_step_flops(latent_dim: int, width: int, batch_size: int) -> float:
    """FLOPs of one GAN training step: the generator forward on a batch of noise,
    the discriminator forward on the real and the generated batch, and the
    backward passes (about twice the forward each), i.e. 3 x (G + 2 D) per image."""
    g, d = dcgan_flops(latent_dim, width)
    return 3.0 * (g + 2 * d) * batch_size


def mnist_judge_flops() -> float:
    """Forward FLOPs per image of :func:`dlbook.mnist_judge.build_judge`."""
    return (conv2d_flops(26, 3, 1, 32) + conv2d_flops(11, 3, 32, 64)
            + dense_flops(5 * 5 * 64, 128) + dense_flops(128, 10))


# --------------------------------------------------------------------------
# An estimate: named parts, in seconds


@dataclass
class Estimate:
    """A run time estimated part by part (seconds), on an assumed device."""

    device: str = "a Colab T4"
    rate: float = T4_RATE
    parts: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> "Estimate":
        """Add a part given in seconds."""
        self.parts[name] = self.parts.get(name, 0.0) + float(seconds)
        return self

    def add_flops(self, name: str, flops: float) -> "Estimate":
        """Add a part given in FLOPs, at :attr:`rate`."""
        return self.add(name, flops / self.rate)

    @property
    def seconds(self) -> float:
        return float(sum(self.parts.values()))

    @property
    def minutes(self) -> float:
        return self.seconds / 60.0

    def rows(self) -> list[list]:
        """``[part, seconds]`` rows, then the total, for a table."""
        return [[name, round(s, 1)] for name, s in self.parts.items()] + [["total", round(self.seconds, 1)]]

    def summary(self) -> str:
        """One line: ``estimated N min on a Colab T4``."""
        return f"estimated {self.minutes:.0f} min on {self.device}"


def training_flops(forward_flops: float, examples: float) -> float:
    """Training FLOPs: forward, and a backward pass of about twice the forward,
    for ``examples`` examples."""
    return 3.0 * forward_flops * examples


def cifar10_chapter(*, n_train: int, n_val: int, n_test: int, source_epochs: int, augmented_source_runs: int,
                    resnet_epochs: int, resnet_config: dict, speed_images: int, speed_compilations: int,
                    pipeline_images: int, pipeline_rate: float = 2_956.0,
                    download_s: float = 60.0) -> Estimate:
    """Chapter 4 (CIFAR-10): the source's network (plain, then with each
    augmentation), the timing runs, the ResNet's training, and evaluation.

    Args:
        augmented_source_runs: 2 where the chapter also trains the source's
            network with flip/crop (in the model) and with the source's
            augmentation (in a Python input pipeline, bound to the CPU), else 0.
        speed_images: images trained on by all the timing runs together.
        speed_compilations: training steps compiled for those runs.
        pipeline_images: images the input-pipeline measurement draws.
        pipeline_rate: images per second of the source's augmentation in the
            input pipeline on two CPU cores (measured on the book's 2-core
            machine, ``results/recorded_runs.csv``; Colab gives two cores too).
    """
    est = Estimate()
    est.add("set-up: install, imports", SETUP_S)
    est.add("CIFAR-10 download (about 170 MB) and decoding", download_s)
    src, res = source_cnn_flops(), small_resnet_flops(**resnet_config)
    runs = 1 + augmented_source_runs
    est.add_flops(f"source network: {runs} run{'s' if runs != 1 else ''} x {source_epochs} epochs"
                  " (training + validation)",
                  runs * source_epochs * (training_flops(src, n_train) + src * n_val))
    if augmented_source_runs >= 2:
        # the run with the source's augmentation waits for the CPU pipeline, not the GPU
        est.add("  ... and the wait for the source's augmentation, on the CPU",
                max(0.0, source_epochs * n_train / pipeline_rate
                    - source_epochs * (training_flops(src, n_train) + src * n_val) / est.rate))
    est.add_flops(f"timing runs ({speed_images:,} images)", training_flops(res, speed_images))
    est.add("input pipeline measurement", pipeline_images / pipeline_rate)
    est.add_flops(f"ResNet: {resnet_epochs} epochs of {n_train:,} (training + validation)",
                  resnet_epochs * (training_flops(res, n_train) + res * n_val))
    est.add_flops("test set: ResNet x 4 passes, source network x 1", n_test * (4 * res + src))
    est.add(f"compiling: {runs + speed_compilations + 1} training steps x {COMPILE_S:.0f} s",
            (runs + speed_compilations + 1) * COMPILE_S)
    return est


def gan_chapter(*, steps: int, batch_size: int, width: int, latent_dim: int, bench_steps: int, bench_variants: int,
                judge_epochs: int, n_eval: int, n_judge_train: int = 60_000, download_s: float = 15.0,
                eager_step_s: float = 0.05) -> Estimate:
    """Chapter 5 (DCGAN on MNIST): the judge's training, the timing of the step's
    variants (eager included), the GAN's training and the evaluation.

    Args:
        bench_variants: step variants timed, eager included; each gets
            ``bench_steps`` timed steps and one untimed first call.
        eager_step_s: assumed Python dispatch time of one eager step (a few
            hundred operations, one at a time), on top of its arithmetic.
    """
    est = Estimate()
    est.add("set-up: install, imports", SETUP_S)
    est.add("MNIST download", download_s)
    judge = mnist_judge_flops()
    est.add_flops(f"judge: {judge_epochs} epochs of {n_judge_train:,}", training_flops(judge, judge_epochs * n_judge_train))
    step = gan_step_flops(latent_dim, width, batch_size)
    est.add_flops(f"timing: {bench_variants} variants x {bench_steps + 1} steps",
                  bench_variants * (bench_steps + 1) * step)
    est.add("  ... and the eager variant's Python dispatch", (bench_steps + 1) * eager_step_s)
    est.add_flops(f"training: {steps:,} steps of {batch_size}", steps * step)
    g, _ = dcgan_flops(latent_dim, width)
    est.add_flops("evaluation: samples and judge features", 3 * n_eval * (g + judge))
    # every timed variant but the eager one is traced (and maybe compiled), and so is the step trained
    est.add(f"compiling: {bench_variants} training steps x {COMPILE_S:.0f} s", bench_variants * COMPILE_S)
    return est
