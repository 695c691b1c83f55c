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
    pytest.param(("tensorflow", "jax", "matplotlib"), ("dlbook.generative",), id="generative-numpy-only"),
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


def _dlbook_imports() -> dict[str, set[str]]:
    """Each dlbook module and the dlbook modules it imports (anywhere in it, lazily or not)."""
    import ast
    from pathlib import Path

    import dlbook

    package = Path(dlbook.__file__).parent
    modules = {p.stem for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name in modules:
        tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:  # from .x import y, from . import x
                    found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
                elif node.module and node.module.startswith("dlbook."):
                    found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("dlbook.")}
        graph[name] = found & modules
    return graph


def test_dlbook_import_graph_has_no_circle():
    graph = _dlbook_imports()
    assert graph["records"] == set(), "records reads the CSV with the standard library only"

    def path_back(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return path + [start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    circles = [" -> ".join(p) for m in sorted(graph) if (p := path_back(m))]
    assert not circles, f"import circles: {circles}"


def test_every_module_is_on_both_maps():
    """The package docstring's map and README.md's layout table name every dlbook module, and only those."""
    import re
    from pathlib import Path

    import dlbook

    package = Path(dlbook.__file__).parent
    modules = {p.stem for p in package.glob("*.py")} - {"__init__"}
    on_docstring = set(re.findall(r":mod:`~?dlbook\.(\w+)`", dlbook.__doc__))
    readme = (package.parents[1] / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `src/dlbook/` |"))
    on_readme = set(re.findall(r"`(\w+)\.py`", row)) - {"__init__"}
    assert on_docstring == modules, (f"docstring lacks {sorted(modules - on_docstring)}, "
                                     f"names missing modules {sorted(on_docstring - modules)}")
    assert on_readme == modules, (f"README lacks {sorted(modules - on_readme)}, "
                                  f"names missing modules {sorted(on_readme - modules)}")
