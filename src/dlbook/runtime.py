"""Chapter start-up: quiet logs, seeds, the mixed-precision policy and the banner.

A chapter's Setup cell calls :func:`setup` once::

    import dlbook
    profile = dlbook.setup()

Nothing here imports TensorFlow or JAX at module import time; each helper
imports the backend it needs lazily, so ``dlbook`` works where TensorFlow is
absent (the GPU machine of the JAX backend, for example). Backend and device
detection (:func:`gpu_visible`, :func:`gpu_compute_capability`,
:func:`device_description`, :func:`import_backend`...) live in
:mod:`dlbook.devices`; import them from there.
"""

from __future__ import annotations

import platform
import random
import sys
import warnings

# Backend and device detection live in the ground-floor module dlbook.devices.
from .devices import (
    backend_name,
    device_description,
    gpu_compute_capability,
    gpu_visible,
    has_module,
    import_backend,
    quiet_environment,
)
from .profiles import Profile, current_profile


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
