"""dlbook.estimates: FLOPs from layer shapes, and the gpu profiles' time on a Colab T4."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlbook import estimates

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"


def front_matter_gpu_time(stem: str) -> str:
    text = (CHAPTERS / f"{stem}.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    return meta["dlbook"]["time"]["gpu"]


def test_rate_is_the_t4_peak_at_the_utilisation_measured_on_the_h100():
    assert estimates.T4_RATE == pytest.approx(65e12 * 0.025)
    assert estimates.T4_RATE / estimates.T4_PEAK_FLOPS_FP32 == pytest.approx(0.2, abs=0.01)


def test_importing_estimates_imports_no_backend():
    code = ("import sys; import dlbook.estimates\n"
            "assert not [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules]\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_layer_flops():
    assert estimates.conv2d_flops(30, 3, 3, 32) == 2 * 30 * 30 * 27 * 32
    assert estimates.dense_flops(512, 10) == 2 * 512 * 10
    # a stride-2 transposed convolution from 7x7 equals a 4x-sparser convolution at 14x14
    assert estimates.conv_transpose2d_flops(7, 4, 8, 4) == estimates.conv2d_flops(14, 4, 8, 4) / 4


def test_network_flops_from_layer_shapes():
    # ResNet-9: five 3x3 convolutions of 2 x 37.7 M multiply-adds, a stem and a classifier
    resnet9 = estimates.small_resnet_flops(widths=(128, 256, 512), residual=(True, False, True), stem=64,
                                           bn_momentum=0.9)
    assert resnet9 == pytest.approx(758.5e6, rel=1e-3)
    assert estimates.small_resnet_flops() < resnet9 / 10  # the cpu profile's small ResNet
    assert estimates.source_cnn_flops() == pytest.approx(10.68e6, rel=1e-3)
    g, d = estimates.dcgan_flops(64, 64)
    assert g == pytest.approx(105.27e6, rel=1e-3) and d == pytest.approx(13.26e6, rel=1e-3)
    assert estimates.gan_step_flops(64, 64, 128) == 3 * (g + 2 * d) * 128
    assert estimates.mnist_judge_flops() == pytest.approx(5.26e6, rel=1e-3)


def test_estimate_adds_parts():
    est = estimates.Estimate(rate=1e12).add("a", 30).add_flops("b", 3e13).add("a", 30)
    assert est.parts == {"a": 60.0, "b": 30.0}
    assert est.seconds == 90 and est.minutes == 1.5
    assert est.rows()[-1] == ["total", 90.0]
    assert est.summary() == "estimated 2 min on a Colab T4"


def cifar10_gpu():
    """Chapter 4's gpu profile, as its cells run it (TensorFlow, all 10,000 test images)."""
    return estimates.cifar10_chapter(
        n_train=45_000, n_val=5_000, n_test=10_000, source_epochs=6, augmented_source_runs=2, resnet_epochs=10,
        resnet_config=dict(widths=(128, 256, 512), residual=(True, False, True), stem=64),
        speed_images=(512 + 512 + 256 + 1024 + 512) * (10 + 1), speed_compilations=5,
        pipeline_images=2 * (40 + 1) * 512)


def gan_gpu():
    """Chapter 5's gpu profile: eager and four compiled variants timed, the judge trained."""
    return estimates.gan_chapter(steps=14_000, batch_size=128, width=64, latent_dim=64, bench_steps=300,
                                 bench_variants=5, judge_epochs=6, n_judge_train=60_000, n_eval=5_000)


def gpt_gpu():
    """Chapter 8's gpu profile on TensorFlow (Colab's backend): six timed rows of 10 steps, two rounds;
    three samples of 200 characters, 4 + 2 of 300, two logit checks, 640 per-window losses."""
    gpt = pytest.importorskip("dlbook.gpt")
    model_cfg, train_cfg = gpt.recipe("gpu")
    return gpt.run_estimate(model_cfg, train_cfg, timed_steps=6 * (1 + 2) * 10,
                            model_calls=3 * 200 + 6 * 300 + 2 + 640, compilations=5 + 1)


@pytest.mark.parametrize("stem, estimate", [("04_cnn_cifar10", cifar10_gpu), ("05_gan", gan_gpu),
                                            ("08_gpt", gpt_gpu)])
def test_gpu_profiles_fit_a_colab_t4_and_the_front_matter_says_so(stem, estimate):
    est = estimate()
    assert est.minutes < estimates.BUDGET_MIN, est.rows()
    line = front_matter_gpu_time(stem)
    assert re.search(rf"estimated {est.minutes:.0f} min on a Colab T4", line), (line, est.minutes)
    assert f"about {est.minutes:.0f} minutes on a" in (CHAPTERS / f"{stem}.md").read_text()


def test_gpt_measured_utilisation_is_the_assumed_one():
    gpt = pytest.importorskip("dlbook.gpt")
    model_cfg, _ = gpt.recipe("gpu")
    mfu = gpt.model_flops_utilisation(model_cfg, estimates.H100_GPT_TOKENS_PER_S, estimates.H100_PEAK_FLOPS)
    assert mfu == pytest.approx(estimates.MEASURED_MFU, abs=0.0005)
