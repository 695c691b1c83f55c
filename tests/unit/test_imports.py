"""dlbook's modules import without a deep-learning framework.

dlbook must import where TensorFlow is absent (the GPU machine of the JAX
backend), and its NumPy-only modules without any framework at all: each case
blocks some modules (``sys.modules[name] = None`` makes importing them fail),
imports dlbook modules in a fresh interpreter, and checks that Keras was not
imported eagerly. (dlbook.serve and dlbook.mnist_judge have their own such
tests, which check more.)
"""

import subprocess
import sys

import pytest

CASES = [
    pytest.param(
        ("tensorflow",),
        ("dlbook", "dlbook.data", "dlbook.plots", "dlbook.profiles", "dlbook.runtime", "dlbook.devices",
         "dlbook.bench"),
        id="dlbook-without-tensorflow",
    ),
    pytest.param(("tensorflow", "jax"), ("dlbook.metrics", "dlbook.progress"), id="numpy-only-without-a-framework"),
    pytest.param((), ("dlbook.generative",), id="generative-without-keras"),
    # The recorded runs are read where nothing but dlbook is installed.
    pytest.param(("tensorflow", "jax", "matplotlib", "IPython", "numpy"), ("dlbook.records", "dlbook.report"),
                 id="records-with-the-standard-library-only"),
]


@pytest.mark.parametrize("blocked, modules", CASES)
def test_imports_without_a_framework(blocked, modules):
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        f"import {', '.join(modules)}\n"
        "assert 'keras' not in sys.modules, 'dlbook imported keras eagerly'\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
