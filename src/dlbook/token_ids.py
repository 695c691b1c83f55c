"""Integer token-id arrays, saved once in the data cache and loaded back.

Text becomes integer ids once (the vectoriser may need TensorFlow); the models
then train from plain NumPy arrays, on any Keras backend, on a machine without
TensorFlow if the cached ``.npz`` file is carried there. Files live in
``<data cache>/token_ids/<name>.npz`` (see :func:`dlbook.data.cache_dir`), are
written atomically, and hold only NumPy arrays (no pickles), a vocabulary being
stored as an array of strings.

Typical use in a chapter::

    key = ids_key("imdb", vocab_size=20000, length=256, n_train=10000)
    arrays = load_token_ids(key)
    if arrays is None:
        arrays = {...}            # vectorise the text (TensorFlow allowed here)
        save_token_ids(key, arrays)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .data import cache_dir

SUBDIR = "token_ids"


def ids_key(prefix: str, **settings: Any) -> str:
    """A file name for the arrays made with ``settings``: the prefix and a short,
    stable hash of the settings (sorted by name), so different settings never
    share a file.

    >>> ids_key("imdb", length=128, vocab_size=1000) == ids_key("imdb", vocab_size=1000, length=128)
    True
    """
    if not prefix or any(c in prefix for c in "/\\ "):
        raise ValueError(f"prefix must be a plain name, got {prefix!r}")
    text = json.dumps(settings, sort_keys=True, default=str)
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def ids_path(name: str) -> Path:
    """Where the arrays called ``name`` are (or would be) cached."""
    return cache_dir() / SUBDIR / f"{name}.npz"


def save_token_ids(name: str, arrays: Mapping[str, np.ndarray]) -> Path:
    """Save named arrays as ``<cache>/token_ids/<name>.npz``, atomically.

    The file is written under a temporary name in the same folder and renamed
    into place, so an interrupted save never leaves a file that
    :func:`load_token_ids` would read. Object arrays are refused (they would
    need pickling); store strings as a NumPy string array.

    Returns:
        The path of the saved file.
    """
    clean = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == object:
            raise TypeError(f"array {key!r} has dtype object: convert it (strings: np.asarray(x, dtype=str))")
        clean[key] = value
    target = ids_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **clean)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_token_ids(name: str) -> dict[str, np.ndarray] | None:
    """The arrays saved under ``name``, or None when there is no cached file."""
    path = ids_path(name)
    return read_token_ids(path) if path.is_file() else None


def read_token_ids(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a token-id file at ``path`` (a cached one, or a copy carried
    to another machine), without unpickling anything."""
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}
