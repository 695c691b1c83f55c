"""The book's data registry: every dataset declared once, every file verified.

Each :class:`Dataset` lists its files. A file is looked for, in order:

1. in the local mirror named by ``DLBOOK_DATA_MIRROR`` (a folder laid out like
   the book's offline mirror: ``mnist/mnist.npz``, ``shakespeare/input.txt``, ...),
   read in place and never written to;
2. in the cache folder (``data/`` at the top of a checkout of the book,
   ``~/.cache/dlbook`` elsewhere, or ``DLBOOK_DATA_DIR``);
3. on the internet, downloaded with a progress bar into the cache.

Every file is checked against its SHA-256 before use; a file that fails the
check is never used. When no verified copy can be had, :class:`DatasetError`
says which dataset and file, the checksum expected, and how to fix it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIRROR_ENV = "DLBOOK_DATA_MIRROR"
CACHE_ENV = "DLBOOK_DATA_DIR"


class DatasetError(RuntimeError):
    """No verified copy of a dataset file could be found or fetched."""


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset.

    Attributes:
        path: where the file lives, relative to a mirror or the cache
            (``"mnist/mnist.npz"``).
        sha256: checksum of the file at ``path``.
        size: its size in bytes.
        url: the canonical download address, or "" where the file exists only
            in the offline mirror (a converted form of the canonical download).
    """

    path: str
    sha256: str
    size: int
    url: str = ""


@dataclass(frozen=True)
class Dataset:
    """A dataset of the book: its files, licence and origin."""

    name: str
    description: str
    licence: str
    homepage: str
    files: tuple[DataFile, ...] = field(default_factory=tuple)

    def file(self, path: str) -> DataFile:
        """The declared file whose path is ``path``."""
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(f"dataset {self.name!r} declares no file {path!r}")


REGISTRY: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    """Add ``dataset`` to :data:`REGISTRY` (later chapters register theirs)."""
    REGISTRY[dataset.name] = dataset
    return dataset


register(
    Dataset(
        name="mnist",
        description="70,000 grey-scale 28x28 handwritten digits (60,000 train, 10,000 test)",
        licence="CC BY-SA 3.0 (Y. LeCun, C. Cortes, C. J. C. Burges)",
        homepage="http://yann.lecun.com/exdb/mnist/",
        files=(
            # Byte-identical to the file keras.datasets.mnist downloads.
            DataFile(
                "mnist/mnist.npz",
                "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                11490434,
                "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
            ),
        ),
    )
)

register(
    Dataset(
        name="shakespeare",
        description="Tiny Shakespeare: 1,115,394 characters of plays (char-rnn corpus)",
        licence="public domain text",
        homepage="https://github.com/karpathy/char-rnn",
        files=(
            DataFile(
                "shakespeare/input.txt",
                "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                1115394,
                "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            ),
        ),
    )
)


# --------------------------------------------------------------------------
# Locating and verifying files


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_VERIFIED: dict[tuple[str, int, float], bool] = {}


def verify(path: Path, expected: DataFile) -> bool:
    """True if ``path`` exists with the expected size and SHA-256.

    Results are remembered per (path, size, mtime) within a process, so a
    chapter that loads a file twice hashes it once.
    """
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != expected.size:
        return False
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_of(path) == expected.sha256
    return _VERIFIED[key]


def _find_book_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "_toc.yml").is_file() and (folder / "src" / "dlbook").is_dir():
            return folder
    return None


def cache_dir() -> Path:
    """The cache folder: ``DLBOOK_DATA_DIR``, else ``data/`` of the book checkout
    that the working directory is in, else ``~/.cache/dlbook``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        root = _find_book_root(start)
        if root is not None:
            return root / "data"
    return Path.home() / ".cache" / "dlbook"


def mirror_dir() -> Path | None:
    """The local mirror named by ``DLBOOK_DATA_MIRROR``, if set."""
    env = os.environ.get(MIRROR_ENV)
    return Path(env).expanduser() if env else None


def _fix_hint(dataset: Dataset, f: DataFile) -> str:
    hints = [
        f"set {MIRROR_ENV} to a folder holding {f.path} (for example ../shared/data in the book's CI)"
    ]
    if f.url:
        hints.append(f"or connect to the internet once so it can be downloaded from {f.url}")
    hints.append(f"or place a good copy at {cache_dir() / f.path}")
    return "; ".join(hints)


def _download(f: DataFile, target: Path) -> None:
    """Download ``f`` to ``target`` atomically (temporary file, verify, rename)."""
    import keras  # imported lazily: only downloads need it

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".partial-") as tmp:
        fetched = keras.utils.get_file(
            fname=target.name, origin=f.url, cache_dir=tmp, cache_subdir="."
        )
        fetched = Path(fetched)
        if not verify(fetched, f):
            raise DatasetError(
                f"downloaded {f.url} but its SHA-256 is {sha256_of(fetched)}, "
                f"not the expected {f.sha256}; the file was discarded"
            )
        os.replace(fetched, target)


def fetch(dataset: str, path: str | None = None, *, download: bool = True) -> Path:
    """Return a verified local path to one file of a registered dataset.

    Args:
        dataset: a name in :data:`REGISTRY` (``"mnist"``).
        path: the file's registry path; may be omitted for one-file datasets.
        download: whether to try the internet when neither mirror nor cache
            has a good copy.

    Raises:
        DatasetError: with the dataset, the file, the expected checksum and
            how to fix it, when no verified copy is available.
    """
    if dataset not in REGISTRY:
        raise DatasetError(
            f"unknown dataset {dataset!r}; registered: {', '.join(sorted(REGISTRY))}"
        )
    ds = REGISTRY[dataset]
    if path is None:
        if len(ds.files) != 1:
            raise DatasetError(f"dataset {dataset!r} has several files; name one")
        f = ds.files[0]
    else:
        f = ds.file(path)

    rejected: list[str] = []
    mirror = mirror_dir()
    if mirror is not None:
        candidate = mirror / f.path
        if verify(candidate, f):
            return candidate
        if candidate.exists():
            rejected.append(f"{candidate} (checksum mismatch: corrupt or a different version)")
    cached = cache_dir() / f.path
    if verify(cached, f):
        return cached
    if cached.exists():
        rejected.append(f"{cached} (checksum mismatch: corrupt or truncated)")
    if download and f.url and os.environ.get("DLBOOK_OFFLINE", "") in ("", "0"):
        try:
            _download(f, cached)
            return cached
        except DatasetError:
            raise
        except Exception as err:  # network errors come in many types
            rejected.append(f"download from {f.url} failed: {type(err).__name__}: {err}")
    found = "; ".join(rejected) if rejected else "no copy found"
    raise DatasetError(
        f"dataset {ds.name!r}: no verified copy of {f.path} "
        f"(expected SHA-256 {f.sha256}, {f.size:,} bytes). Tried: {found}. "
        f"To fix: {_fix_hint(ds, f)}."
    ) from None


# --------------------------------------------------------------------------
# Loaders


def _take(x: np.ndarray, y: np.ndarray, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    return (x, y) if n is None else (x[:n], y[:n])


def load_mnist(
    n_train: int | None = None, n_test: int | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST digits as NumPy arrays, in the layout of ``keras.datasets.mnist``.

    Args:
        n_train: keep only the first ``n_train`` training examples (the smoke
            profile's subset); None keeps all 60,000.
        n_test: likewise for the 10,000 test examples.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: images ``uint8`` of shape
        ``(n, 28, 28)`` with values 0-255, labels ``uint8`` of shape ``(n,)``
        with values 0-9.
    """
    path = fetch("mnist", "mnist/mnist.npz")
    with np.load(path, allow_pickle=False) as npz:
        train = _take(npz["x_train"], npz["y_train"], n_train)
        test = _take(npz["x_test"], npz["y_test"], n_test)
    return train, test


def load_shakespeare() -> str:
    """Tiny Shakespeare as one string of 1,115,394 characters."""
    return fetch("shakespeare", "shakespeare/input.txt").read_text(encoding="utf-8")


def copy_to_cache(dataset: str, path: str, source: Path) -> Path:
    """Verify ``source`` and copy it into the cache atomically (a helper for
    readers who fetched a file by hand)."""
    f = REGISTRY[dataset].file(path)
    if not verify(source, f):
        raise DatasetError(f"{source} does not match {dataset}:{path} (SHA-256 {f.sha256})")
    target = cache_dir() / f.path
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        shutil.copyfile(source, tmp.name)
    os.replace(tmp.name, target)
    return target
