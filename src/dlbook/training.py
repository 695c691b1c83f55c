"""Putting a compiled model back to its starting point without compiling it again.

Chapter 8 times a model and then trains it from the same start; chapter 9
fine-tunes one compiled classifier from two starting points, run after run.
Building and compiling a new model each time would trace a new training step,
seconds of a CPU's time per run. Instead: keep the weights and the dropout
layers' random state, then put them back and zero the optimizer's state.

This module imports Keras when it is imported, so a chapter imports it after
``dlbook.setup()``; ``import dlbook`` alone never does.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


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
