"""The machine and the Keras backend: which backend, which device, and importing it quietly.

The ground floor of the package: it imports neither :mod:`dlbook.profiles`
nor :mod:`dlbook.runtime` (both import from here), and no backend at import
time. Each helper imports the backend it asks lazily, so this module works
where TensorFlow is absent (the GPU machine of the JAX backend, for example).

* quiet start-up: :func:`quiet_environment` (log-quieting environment
  variables), :func:`muted_stderr`, :func:`filter_native_logs`;
* the backend: :func:`backend_name` (without importing Keras),
  :func:`has_module`, :func:`import_backend`;
* the device: :func:`gpu_visible`, :func:`device_description`,
  :func:`gpu_compute_capability`, and :data:`PEAK_FLOPS` (datasheet peak
  FLOP/s, the denominator of model FLOPs utilisation) with :func:`peak_flops`.

:mod:`dlbook.runtime` (a chapter's start-up) uses them; chapters and tools
import them from here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import platform
import re
import sys
import threading
from pathlib import Path
from typing import Iterator

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


# --------------------------------------------------------------------------
# Peak throughput of known GPUs

PEAK_FLOPS = {
    "H100": 989e12,  # bf16 dense, datasheet (SXM)
    "H200": 989e12,
    "A100": 312e12,
    "L4": 121e12,
    "T4": 65e12,  # fp16
}
"""Datasheet peak dense bf16/fp16 FLOP/s of GPUs, the denominator of MFU."""


def peak_flops(device_name: str) -> tuple[str, float] | None:
    """``(name, peak FLOP/s)`` for a GPU named in ``device_name`` (as
    :func:`device_description` writes it), or None (CPUs, unknown GPUs)."""
    for key, value in PEAK_FLOPS.items():
        if key.lower() in device_name.lower():
            return key, value
    return None


def _busy_cpu_seconds() -> float | None:
    """Seconds of CPU time all cores have spent busy since boot (Linux's
    ``/proc/stat``: user, nice, system, irq, softirq, steal), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherPrograms:
    """How many cores other programs kept busy while a ``with`` block ran.

    A timing on a shared machine measures this program and its neighbours: a
    multi-threaded runtime (XLA's pool takes one thread per core) loses more
    to them than a single-threaded one, so a ratio of the two can flip. After
    the block, ``cores`` is the machine's busy CPU time less this process's
    own (all its threads), divided by the block's wall time; None where the
    machine's busy time cannot be read (not Linux). ``busy(fraction)`` says
    whether they took more than that fraction of the cores.

    Example::

        with OtherPrograms() as others:
            timings = measure()
        if others.busy(0.25): print(f"{others.cores:.1f} cores busy elsewhere")
    """

    def __enter__(self) -> "OtherPrograms":
        import time

        self.cores: float | None = None
        self._start = (time.perf_counter(), time.process_time(), _busy_cpu_seconds())
        return self

    def __exit__(self, *exc) -> None:
        import time

        wall0, own0, busy0 = self._start
        wall, own, busy = time.perf_counter() - wall0, time.process_time() - own0, _busy_cpu_seconds()
        if busy0 is not None and busy is not None and wall > 0:
            self.cores = max(0.0, (busy - busy0 - own) / wall)

    def busy(self, fraction: float) -> bool:
        """True if other programs kept more than ``fraction`` of the cores busy
        (False where that could not be measured)."""
        return self.cores is not None and self.cores > fraction * (os.cpu_count() or 1)
