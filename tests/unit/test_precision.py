"""dlbook.runtime's choice of mixed precision by GPU compute capability, and float16 training."""

import importlib.machinery
import subprocess
import sys
import types

import numpy as np
import pytest

from dlbook import devices, runtime


@pytest.mark.parametrize("capability, policy", [
    ((9, 0), "mixed_bfloat16"),   # H100
    ((8, 9), "mixed_bfloat16"),   # L4
    ((8, 6), "mixed_bfloat16"),   # A10, RTX 30xx
    ((8, 0), "mixed_bfloat16"),   # A100: the first with bfloat16 tensor cores
    ((7, 5), "mixed_float16"),    # T4, Colab's free GPU
    ((7, 0), "mixed_float16"),    # V100
    ((6, 0), "mixed_float16"),    # P100
    (None, "float32"),            # no GPU
])
def test_policy_by_compute_capability(capability, policy):
    assert runtime.mixed_precision_policy(capability) == policy
    assert runtime.mixed_precision_policy(capability=capability) == policy


def test_policy_rejects_other_strings():
    with pytest.raises(ValueError):
        runtime.mixed_precision_policy("7.5")


@pytest.mark.parametrize("raw, parsed", [
    ((7, 5), (7, 5)), ([8, 0], (8, 0)), ("7.5", (7, 5)), ("9.0", (9, 0)), ("10", (10, 0)), (8.6, (8, 6)),
    (None, None), ("gfx90a", None), ((), None),
])
def test_parse_capability(raw, parsed):
    assert devices._parse_capability(raw) == parsed


def test_given_a_capability_nothing_imports_a_backend():
    code = (
        "import sys\n"
        "from dlbook import runtime\n"
        "assert runtime.mixed_precision_policy((7, 5)) == 'mixed_float16'\n"
        "assert runtime.mixed_precision_policy(capability=(9, 0)) == 'mixed_bfloat16'\n"
        "assert runtime.mixed_precision_policy(None) == 'float32'\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def fake_module(name, **attrs):
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # so that find_spec sees it
    module.__dict__.update(attrs)
    return module


def test_capability_through_jax(monkeypatch):
    cpu = types.SimpleNamespace(platform="cpu")
    t4 = types.SimpleNamespace(platform="gpu", compute_capability="7.5")
    monkeypatch.setattr(devices, "backend_name", lambda: "jax")
    monkeypatch.setitem(sys.modules, "jax", fake_module("jax", devices=lambda: [cpu]))
    assert devices.gpu_compute_capability() is None
    assert runtime.mixed_precision_policy() == "float32"
    monkeypatch.setitem(sys.modules, "jax", fake_module("jax", devices=lambda: [t4]))
    assert devices.gpu_compute_capability() == (7, 5)
    assert runtime.mixed_precision_policy() == "mixed_float16"


def test_capability_through_torch(monkeypatch):
    cuda = types.SimpleNamespace(is_available=lambda: True, get_device_capability=lambda i=0: (8, 0))
    monkeypatch.setattr(devices, "backend_name", lambda: "torch")
    monkeypatch.setitem(sys.modules, "torch", fake_module("torch", cuda=cuda))
    assert devices.gpu_compute_capability() == (8, 0)
    assert runtime.mixed_precision_policy() == "mixed_bfloat16"
    cuda.is_available = lambda: False
    assert devices.gpu_compute_capability() is None


def test_capability_on_this_machine_is_none_or_a_pair():
    capability = devices.gpu_compute_capability()
    assert capability is None or (len(capability) == 2 and all(isinstance(v, int) for v in capability))
    assert runtime.mixed_precision_policy() == runtime.mixed_precision_policy(capability)


# --------------------------------------------------------------------------
# float16 training goes through a LossScaleOptimizer (chapter 8's compile_gpt)


@pytest.fixture
def float16_policy():
    keras = pytest.importorskip("keras")
    keras.config.set_dtype_policy("mixed_float16")
    yield keras
    keras.config.set_dtype_policy("float32")


def test_compile_gpt_scales_the_loss_under_float16(float16_policy):
    keras = float16_policy
    from dlbook import gpt

    cfg = gpt.GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
    train_cfg = gpt.TrainConfig(steps=4, batch_size=4, warmup_steps=1, decay_steps=4, steps_per_execution=1)
    model = gpt.compile_gpt(gpt.build_gpt(cfg), train_cfg, jit_compile=False)
    assert model.dtype_policy.name == "mixed_float16"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, keras.optimizers.AdamW)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 11, size=(4, 8)).astype("int32")
    before = [w.copy() for w in model.get_weights()]
    losses = [float(model.train_on_batch(x, np.roll(x, -1, axis=1))) for _ in range(3)]
    assert np.isfinite(losses).all()
    assert model.get_weights()[0].dtype == np.float32  # weights stay in float32
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert float(keras.ops.convert_to_numpy(model.optimizer.dynamic_scale)) > 1.0
