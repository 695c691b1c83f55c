"""Training plumbing: an epoch log for ``fit``, and putting a compiled model
back to its starting point without compiling it again.

``EpochLog`` records each epoch's wall time and prints a plain line every few
epochs (elapsed time, an estimate of what is left, the metrics asked for), so a
reader waiting on a long ``fit`` sees it move without a redrawn progress bar.

Chapter 8 times a model and then trains it from the same start; chapter 9
fine-tunes one compiled classifier from two starting points, run after run.
Building and compiling a new model each time would trace a new training step,
seconds of a CPU's time per run. Instead: keep the weights and the dropout
layers' random state, then put them back and zero the optimizer's state.

This module imports Keras when it is imported, so a chapter imports it after
``dlbook.setup()``; ``import dlbook`` alone never does.
"""

from __future__ import annotations

import time
from typing import Sequence

import keras
import numpy as np
from keras import ops

from .progress import status_line


class EpochLog(keras.callbacks.Callback):
    """Time every epoch of ``fit`` and print a line every few epochs.

    After training, ``seconds[i]`` is epoch ``i``'s own wall time and
    ``elapsed[i]`` the time from the start of ``fit`` to the end of epoch ``i``
    (validation included). The first epoch includes tracing and compiling the
    step, so the estimate of time left uses the later epochs' pace.

    Args:
        name: what is training (starts each line).
        lines: about how many lines to print (one after the first epoch, then
            evenly, and after the last); 0 prints nothing.
        metrics: the ``logs`` entries to show, when present
            (``val_accuracy`` is skipped in epochs without validation).
    """

    def __init__(self, name: str = "training", lines: int = 4,
                 metrics: Sequence[str] = ("loss", "val_loss", "val_accuracy")):
        super().__init__()
        self.name, self.lines, self.metrics = name, lines, tuple(metrics)
        self.seconds: list[float] = []
        self.elapsed: list[float] = []

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.seconds, self.elapsed = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.seconds.append(now - self.epoch_start)
        self.elapsed.append(now - self.start)
        total = int(self.params.get("epochs") or len(self.seconds))
        done = len(self.seconds)
        every = max(1, -(-total // self.lines)) if self.lines else 0
        if every and (done == 1 or done == total or done % every == 0):
            shown = ", ".join(f"{k} {float(logs[k]):.4g}" for k in self.metrics if logs and k in logs)
            print(status_line(self.name, done, total, self.elapsed[-1], self.seconds[0], "epochs", shown),
                  flush=True)


def seed_states(model: keras.Model) -> list[tuple[keras.Variable, np.ndarray]]:
    """The current values of the model's seed-generator states (what dropout
    draws its masks from), which ``model.get_weights()`` leaves out."""
    return [(v, ops.convert_to_numpy(v.value)) for v in model.non_trainable_variables if "seed_generator" in v.path]


def reset_training_state(model: keras.Model, weights: list,
                         seeds: list[tuple[keras.Variable, np.ndarray]] | None = None) -> None:
    """Put back ``weights`` (from ``model.get_weights()``) and, if given, the
    seed states from :func:`seed_states`; zero the optimizer's state (its step
    counter and moment estimates), as if training had not begun.

    A fixed learning rate is an optimizer variable too, and is kept; under
    ``mixed_float16`` the loss scale of a ``LossScaleOptimizer`` goes back to its
    initial value (a zero scale would silently stop every update).
    """
    model.set_weights(weights)
    for variable, value in seeds or ():
        variable.assign(value)
    optimizer = model.optimizer
    for variable in optimizer.variables:
        if variable.name == "learning_rate":
            continue
        if variable.name == "dynamic_scale" and hasattr(optimizer, "initial_scale"):
            variable.assign(ops.full(variable.shape, optimizer.initial_scale, variable.dtype))
        else:
            variable.assign(ops.zeros(variable.shape, variable.dtype))
