"""Copied into _nbexec/conftest.py by ``tests/harness.py stage`` (edit it here):
one pytest run executes every staged copy, each under the Keras backend its
folder names, the longest chapters first (hints from chapter_seconds.json,
copied beside it) so that pytest-xdist's workers finish together."""

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
HINTS_FILE = HERE / "chapter_seconds.json"
HINTS = json.loads(HINTS_FILE.read_text()) if HINTS_FILE.exists() else {}


def _key(item) -> str:
    path = Path(str(item.fspath))
    return f"{path.parent.name}/{path.stem}"


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: (-HINTS.get(_key(item), 0.0), _key(item)))


def pytest_runtest_setup(item):
    # nbmake starts the kernel after this hook, with this process's environment
    os.environ["KERAS_BACKEND"] = Path(str(item.fspath)).parent.name
