"""Chapter start-up: quiet logs, seeds, device detection and the banner.

A chapter's Setup cell calls :func:`setup` once::

    import dlbook
    profile = dlbook.setup()

Nothing here imports TensorFlow or JAX at module import time; each helper
imports the backend it needs lazily, so ``dlbook`` works where TensorFlow is
absent (the GPU machine of the JAX backend, for example).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import platform
import random
import re
import sys
import threading
import warnings
from pathlib import Path
from typing import Iterator

from .profiles import Profile, current_profile

# Environment defaults that must be in place before TensorFlow is imported.
_QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # C++ INFO/WARNING/ERROR lines
    "GRPC_VERBOSITY": "ERROR",
    "ABSL_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"),
}


def quiet_environment() -> None:
    """Set log-quieting environment variables (only those not already set)."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def muted_stderr() -> Iterator[None]:
    """Send file descriptor 2 to the null device for the duration of the block.

    TensorFlow's native libraries print start-up lines ("Could not find cuda
    drivers", "oneDNN custom operations are on") before any Python logging is
    configured, straight to file descriptor 2.  Importing under this context
    keeps them off the reader's page.  Python exceptions still propagate.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (some hosts)
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def backend_name() -> str:
    """The Keras backend that will be (or is) active, without importing Keras."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    if config.exists():
        import json

        try:
            return json.loads(config.read_text()).get("backend", "tensorflow")
        except (ValueError, OSError):
            pass
    return "tensorflow"


def has_module(name: str) -> bool:
    """True if ``name`` can be imported (checked without importing it)."""
    return importlib.util.find_spec(name) is not None


NATIVE_LOG_LINE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] )"
)
"""A line of TensorFlow's or XLA's native (absl) logging: info, warning or error, never fatal."""

_native_filter: threading.Thread | None = None


def drop_native_logs(line: bytes) -> bool:
    """True for a native log line that a reader should not see (see :data:`NATIVE_LOG_LINE`)."""
    return NATIVE_LOG_LINE.match(line) is not None


def filter_native_logs() -> bool:
    """From now on, drop TensorFlow's native log lines from file descriptor 2.

    TensorFlow 2.20 (Colab's) writes some C++ log lines ("Compiled cluster using
    XLA!", grappler's "remapper failed") through absl before its logging is
    initialised, ignoring ``TF_CPP_MIN_LOG_LEVEL``; a notebook's kernel shows
    them in the cell. File descriptor 2 becomes a pipe read by a thread that
    forwards every other line to where fd 2 went before. Python's own
    ``sys.stderr`` (warnings, tracebacks) is untouched. Installed once per
    process; returns False where file descriptors cannot be redirected.
    """
    global _native_filter
    if _native_filter is not None:
        return True
    try:
        sys.stderr.flush()
        original = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except (OSError, ValueError, AttributeError):
        return False

    def pump() -> None:
        pending = b""
        while chunk := os.read(read_end, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not drop_native_logs(line))
            if kept:
                os.write(original, kept)
        if pending and not drop_native_logs(pending):
            os.write(original, pending)

    _native_filter = threading.Thread(target=pump, name="dlbook-native-log-filter", daemon=True)
    _native_filter.start()
    return True


def import_backend() -> str:
    """Import Keras and its backend quietly; return the backend's name."""
    quiet_environment()
    with muted_stderr():
        if backend_name() == "tensorflow" or has_module("tensorflow"):
            if has_module("tensorflow"):
                import tensorflow as tf

                tf.get_logger().setLevel(logging.ERROR)
                tf.config.list_physical_devices()  # initialise devices while muted
        import keras  # noqa: F401

        name = keras.backend.backend()
        if name == "jax":
            import jax

            jax.devices()
    if "tensorflow" in sys.modules:  # after the muted block, which restores fd 2 on exit
        filter_native_logs()
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    return name


def gpu_visible() -> bool:
    """True when the active Keras backend can see at least one GPU."""
    backend = backend_name()
    try:
        if backend == "jax" and has_module("jax"):
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch" and has_module("torch"):
            import torch

            return bool(torch.cuda.is_available())
        if has_module("tensorflow"):
            quiet_environment()
            with muted_stderr():
                import tensorflow as tf

                return bool(tf.config.list_physical_devices("GPU"))
    except RuntimeError:
        return False
    return Path("/proc/driver/nvidia/gpus").is_dir() and any(
        Path("/proc/driver/nvidia/gpus").iterdir()
    )


def device_description() -> str:
    """A short description of the device the backend computes on."""
    backend = backend_name()
    try:
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            return f"{dev.platform.upper()} ({getattr(dev, 'device_kind', dev.platform)}) x{jax.device_count()}"
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                return f"GPU ({details.get('device_name', 'unknown')}) x{len(gpus)}"
    except (ImportError, RuntimeError):
        pass
    cores = os.cpu_count() or 1
    return f"CPU ({platform.machine()}, {cores} cores)"


def _parse_capability(value) -> tuple[int, int] | None:
    """``(7, 5)`` from ``(7, 5)``, ``"7.5"`` or ``7.5``; None for anything else
    (an AMD GPU's ``"gfx90a"``, say)."""
    if value is None:
        return None
    try:
        if isinstance(value, (tuple, list)) and len(value) >= 2:
            return int(value[0]), int(value[1])
        major, _, minor = str(value).strip().partition(".")
        return int(major), int(minor or 0)
    except (TypeError, ValueError):
        return None


def gpu_compute_capability() -> tuple[int, int] | None:
    """The CUDA compute capability of the first GPU the active Keras backend
    sees, as ``(major, minor)``: ``(7, 5)`` for a T4, ``(8, 0)`` for an A100,
    ``(9, 0)`` for an H100. None without a (CUDA) GPU.

    Asked through the backend that will compute: TensorFlow's device details,
    JAX's ``Device.compute_capability`` (a string such as ``"7.5"``), or
    ``torch.cuda.get_device_capability()``. The backend is imported here, not
    when ``dlbook.runtime`` is imported.
    """
    backend = backend_name()
    try:
        if backend == "jax" and has_module("jax"):
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            return _parse_capability(getattr(gpus[0], "compute_capability", None)) if gpus else None
        if backend == "torch" and has_module("torch"):
            import torch

            return _parse_capability(torch.cuda.get_device_capability(0)) if torch.cuda.is_available() else None
        if has_module("tensorflow"):
            quiet_environment()
            with muted_stderr():
                import tensorflow as tf

                gpus = tf.config.list_physical_devices("GPU")
                if not gpus:
                    return None
                details = tf.config.experimental.get_device_details(gpus[0])
            return _parse_capability(details.get("compute_capability"))
    except (ImportError, RuntimeError):
        return None
    return None


def mixed_precision_policy(capability: tuple[int, int] | None | str = "detect") -> str:
    """The Keras dtype policy to train with on this machine's GPU.

    * ``"mixed_bfloat16"`` on compute capability 8.0 and later (Ampere and
      newer: A100, A10, L4, RTX 30xx/40xx, H100). Their tensor cores multiply
      bfloat16 natively, and bfloat16 keeps float32's 8-bit exponent, so small
      gradients do not underflow and no loss scaling is needed.
    * ``"mixed_float16"`` on an older GPU (Volta 7.0: V100; Turing 7.5: T4, the
      free GPU of Google Colab). Their tensor cores multiply float16 but not
      bfloat16, which they emulate in float32 arithmetic with extra
      conversions, slower than float32 itself. float16 has only a 5-bit
      exponent: gradients below about 6e-8 flush to zero, so the loss is
      multiplied by a large factor before differentiating and the gradients
      divided by it afterwards (dynamic loss scaling).
      ``keras.Model.compile`` does this by itself: when the model's dtype
      policy is ``mixed_float16`` it wraps the optimizer in
      ``keras.optimizers.LossScaleOptimizer`` (``auto_scale_loss=True``, the
      default; see ``keras/src/trainers/trainer.py``). A training step written
      by hand must wrap the optimizer itself, differentiate
      ``optimizer.scale_loss(loss)`` and apply the gradients through the
      wrapper, which unscales them and skips steps whose gradients overflow.
    * ``"float32"`` without a GPU: on a CPU, 16-bit compute pays only on
      processors with bfloat16 matrix units, which is for a chapter to measure.

    Args:
        capability: ``(major, minor)``, or None for "no GPU"; by default it is
            asked of the active backend with :func:`gpu_compute_capability`.
            Passing it imports no backend.
    """
    if isinstance(capability, str):
        if capability != "detect":
            raise ValueError(f"capability must be (major, minor), None or 'detect', not {capability!r}")
        capability = gpu_compute_capability()
    if capability is None:
        return "float32"
    return "mixed_bfloat16" if tuple(capability) >= (8, 0) else "mixed_float16"


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and Keras (hence the backend) with one seed."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    if "keras" in sys.modules or has_module("keras"):
        import keras

        keras.utils.set_random_seed(seed)


def versions() -> dict[str, str]:
    """Versions of the packages a chapter depends on (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("dlbook", "keras", "tensorflow", "jax", "numpy", "matplotlib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def banner(profile: Profile) -> str:
    """One line naming the profile, backend, device and versions."""
    v = versions()
    backend = backend_name()
    backend_version = v.get(backend, "?")
    return (
        f"dlbook {v.get('dlbook', '?')} | profile {profile.name}"
        f"{' (auto)' if profile.auto else ''} | seed {profile.seed} | "
        f"Keras {v.get('keras', '?')} on {backend} {backend_version} | "
        f"{device_description()} | numpy {v.get('numpy', '?')} | python {v['python']}"
    )


MIN_VERSIONS = {"keras": "3.13", "numpy": "1.26", "matplotlib": "3.8", "tensorflow": "2.17"}
"""Lower bounds the book needs; checked (with a warning) by :func:`setup`."""


def check_versions(installed: dict[str, str] | None = None) -> list[str]:
    """Return a message for each installed package older than :data:`MIN_VERSIONS`."""
    from packaging.version import InvalidVersion, Version

    installed = versions() if installed is None else installed
    problems = []
    for pkg, low in MIN_VERSIONS.items():
        have = installed.get(pkg)
        if have is None:
            continue
        try:
            if Version(have) < Version(low):
                problems.append(f"{pkg} {have} is older than the {low} this book needs")
        except InvalidVersion:
            continue
    return problems


def run_facts(profile: Profile) -> dict[str, str]:
    """What a page states about the run that executed it: profile, device,
    Keras version, backend, seed and date (the ``dlbook_*`` glue keys)."""
    import datetime

    return {
        "dlbook_profile": profile.name,
        "dlbook_device": device_description(),
        "dlbook_keras": versions().get("keras", "?"),
        "dlbook_backend": backend_name(),
        "dlbook_seed": str(profile.seed),
        "dlbook_date": datetime.date.today().isoformat(),
    }


def glue_run_facts(profile: Profile) -> None:
    """Glue :func:`run_facts` so every chapter's page can say how it was executed
    (only inside a Jupyter kernel: a script's stdout stays clean)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):
        return
    from .report import glue

    for key, value in run_facts(profile).items():
        glue(key, value)


def setup(*, backends: tuple[str, ...] | None = None, quiet: bool = False) -> Profile:
    """Prepare a chapter: quiet logs, import the backend, seed, print the banner.

    Args:
        backends: Keras backends the chapter supports; a clear error is raised
            when the active backend is not one of them.
        quiet: do not print the banner.

    Returns:
        The :class:`~dlbook.profiles.Profile` to run in.
    """
    quiet_environment()
    # No blanket DeprecationWarning filter: a kernel shows only those raised by
    # the cell's own code (__main__), and with none filtered all eleven chapters
    # print no warning (smoke, keras 3.15.1, TensorFlow 2.21, numpy 2.4.6,
    # matplotlib 3.11.2). A new one is fixed, or filtered here by message and
    # module, with the library and version it comes from. The one filter:
    # keras 3.13.0 runs `hasattr(np, "object")` when imported (3.13.1 and later
    # when exporting to ONNX), in keras/src/export/tf2onnx_lib.py, and NumPy
    # 1.24-1.26 answer with this FutureWarning (at the floors it headed every
    # chapter's setup cell; NumPy 2 does not warn).
    warnings.filterwarnings("ignore", message=r"In the future `np\.object` will be defined",
                            category=FutureWarning, module=r"keras\.src\.export\.tf2onnx_lib")
    name = import_backend()
    if backends is not None and name not in backends:
        raise RuntimeError(
            f"this chapter runs on the Keras backends {', '.join(backends)}; "
            f"KERAS_BACKEND is {name!r}. Set KERAS_BACKEND to one of them and restart."
        )
    profile = current_profile()
    seed_everything(profile.seed)
    from . import plots

    plots.use_book_style()
    glue_run_facts(profile)
    if not quiet:
        print(banner(profile))
        for problem in check_versions():
            print(f"warning: {problem}; upgrade with pip install -U")
        if profile.name == "gpu" and not gpu_visible():
            print("warning: profile gpu but no GPU is visible; this will be slow")
    return profile
