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
        sha256: checksum of the file at ``path`` ("" only where the publisher
            gives an MD5 alone; then ``md5`` is checked instead).
        size: its size in bytes.
        url: the canonical download address, or "" where the file exists only
            in the offline mirror (a converted form of the canonical download).
        md5: the publisher's MD5, for files whose SHA-256 was never published.
    """

    path: str
    sha256: str
    size: int
    url: str = ""
    md5: str = ""

    @property
    def checksum(self) -> str:
        """The checksum that is verified, named by its algorithm."""
        return f"SHA-256 {self.sha256}" if self.sha256 else f"MD5 {self.md5}"


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


register(
    Dataset(
        name="cifar10",
        description="CIFAR-10: 60,000 colour 32x32 images of 10 classes (50,000 train, 10,000 test)",
        licence="free for research and teaching; cite Krizhevsky (2009), with V. Nair and G. Hinton",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        files=(
            # Converted mirror form: all 50,000 training images, the first 1,000 test images.
            DataFile(
                "cifar10/cifar10_train50k_test1k.npz",
                "4c9fdb7b5d6eedb30dce09ce0adabf3832591b4331b81d0a5b29ff11b8d00d6b",
                144174554,
            ),
            # The canonical download (the file keras.datasets.cifar10 fetches).
            DataFile(
                "cifar10/cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                170498071,
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            ),
        ),
    )
)

register(
    Dataset(
        name="imdb",
        description="Large Movie Review Dataset: 50,000 labelled and 50,000 unlabelled IMDB reviews",
        licence="research use; cite Maas et al., ACL 2011",
        homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
        files=(
            # Repacked mirror form of the review texts (see the mirror's SOURCES.md).
            DataFile(
                "imdb/aclImdb_text.tar.gz",
                "15efe61b046bab2235aba67dd0c29f9768a163a0b62ec53fbed7c6f03e292738",
                56744675,
            ),
            # The canonical archive; its publishers give an MD5 only.
            DataFile(
                "imdb/aclImdb_v1.tar.gz",
                "",
                84125825,
                "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                md5="7c2ac02c03563afcf9b574c7e56c153a",
            ),
        ),
    )
)


# --------------------------------------------------------------------------
# Locating and verifying files


def sha256_of(path: Path, chunk: int = 1 << 20, algorithm: str = "sha256") -> str:
    """The hex digest of a file (SHA-256 unless another ``algorithm`` is named)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_VERIFIED: dict[tuple[str, int, float, str], bool] = {}


def verify(path: Path, expected: DataFile) -> bool:
    """True if ``path`` exists with the expected size and SHA-256.

    Results are remembered per (path, size, mtime, expected checksum) within a
    process, so a chapter that loads a file twice hashes it once.
    """
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != expected.size:
        return False
    key = (str(path.resolve()), st.st_size, st.st_mtime, expected.checksum)
    if key not in _VERIFIED:
        if expected.sha256:
            _VERIFIED[key] = sha256_of(path) == expected.sha256
        else:
            _VERIFIED[key] = sha256_of(path, algorithm="md5") == expected.md5
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
                f"downloaded {f.url} but it does not match the expected {f.checksum} "
                f"({f.size:,} bytes); the file was discarded"
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
        f"(expected {f.checksum}, {f.size:,} bytes). Tried: {found}. "
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


CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
"""CIFAR-10 class names, in label order 0-9."""


def decode_cifar10_archive(path: Path) -> dict[str, np.ndarray]:
    """Decode the canonical ``cifar-10-python.tar.gz`` into the mirror's layout:
    ``x_train`` (50000, 32, 32, 3) uint8, ``y_train`` (50000, 1) uint8, and the
    same for the 10,000 test images. The archive is checksum-verified before
    this is called; its batches are Python pickles of NumPy arrays."""
    import pickle
    import tarfile

    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if name.startswith("data_batch_") or name == "test_batch":
                fh = tar.extractfile(member)
                assert fh is not None
                batch = pickle.load(fh, encoding="bytes")
                x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                y = np.asarray(batch[b"labels"], dtype=np.uint8).reshape(-1, 1)
                batches[name] = (x, y)
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    return {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": batches["test_batch"][0],
        "y_test": batches["test_batch"][1],
    }


def load_cifar10(
    n_train: int | None = None, n_test: int | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 as NumPy arrays.

    Uses the converted mirror file when ``DLBOOK_DATA_MIRROR`` (or the cache)
    has it, else the canonical archive (downloaded once). Both decode to the
    same arrays, except that the offline mirror holds only the first 1,000 of
    the 10,000 test images.

    Args:
        n_train: keep the first ``n_train`` training images (None: all 50,000).
        n_test: keep the first ``n_test`` test images (None: all available).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: images ``uint8`` of shape
        ``(n, 32, 32, 3)`` (RGB, 0-255), labels ``uint8`` of shape ``(n,)``,
        0-9 in the order of :data:`CIFAR10_CLASSES`.
    """
    try:
        path = fetch("cifar10", "cifar10/cifar10_train50k_test1k.npz", download=False)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except DatasetError as mirror_error:
        try:
            arrays = decode_cifar10_archive(fetch("cifar10", "cifar10/cifar-10-python.tar.gz"))
        except DatasetError as canonical_error:
            raise DatasetError(f"{canonical_error}\nThe converted form was not found either: {mirror_error}") from None
    train = _take(arrays["x_train"], arrays["y_train"].reshape(-1), n_train)
    test = _take(arrays["x_test"], arrays["y_test"].reshape(-1), n_test)
    return train, test


IMDB_ARCHIVES = ("imdb/aclImdb_text.tar.gz", "imdb/aclImdb_v1.tar.gz")


def imdb_dir() -> Path:
    """The unpacked ``aclImdb/`` folder in the cache, unpacked once.

    The archive (mirror form first, else the canonical download) is unpacked
    into a temporary folder beside the target, a marker file is written, and
    the folder is renamed into place: an interrupted unpack leaves only a
    temporary folder, never a half-filled ``aclImdb/``.
    """
    import tarfile

    target = cache_dir() / "imdb" / "aclImdb"
    if (target / ".complete").is_file():
        return target
    errors = []
    archive = None
    for path in IMDB_ARCHIVES:
        try:
            archive = fetch("imdb", path, download=path == IMDB_ARCHIVES[-1])
            break
        except DatasetError as err:
            errors.append(str(err))
    if archive is None:
        raise DatasetError("\n".join(errors)) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # left by an older, unmarked unpack: redo it
        shutil.rmtree(target)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".partial-") as tmp:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if not m.name.endswith(".feat")]
            try:
                tar.extractall(tmp, members=members, filter="data")
            except TypeError:  # Python without extraction filters
                tar.extractall(tmp, members=members)  # noqa: S202 - verified archive
        unpacked = Path(tmp) / "aclImdb"
        (unpacked / ".complete").write_text(f"unpacked from {archive.name}\n")
        os.replace(unpacked, target)
    return target


def load_imdb(
    split: str = "train", n: int | None = None
) -> tuple[list[str], np.ndarray]:
    """IMDB reviews of one split as text, with labels.

    Args:
        split: ``"train"`` or ``"test"`` (25,000 labelled reviews each) or
            ``"unsup"`` (50,000 unlabelled training reviews).
        n: keep ``n`` reviews, half positive and half negative for labelled
            splits (the first by file name, so the subset is fixed).

    Returns:
        ``(texts, labels)``: a list of review strings and an ``int8`` array of
        shape ``(len(texts),)``: 1 positive, 0 negative, -1 unlabelled.
    """
    root = imdb_dir()
    if split == "unsup":
        groups = [(root / "train" / "unsup", -1, n)]
    elif split in ("train", "test"):
        half = None if n is None else n // 2
        rest = None if n is None else n - n // 2
        groups = [(root / split / "neg", 0, half), (root / split / "pos", 1, rest)]
    else:
        raise ValueError(f"split must be 'train', 'test' or 'unsup', not {split!r}")

    def order(p: Path) -> tuple[int, str]:
        stem = p.stem.split("_")[0]
        return (int(stem) if stem.isdigit() else 0, p.name)

    texts: list[str] = []
    labels: list[int] = []
    for folder, label_value, count in groups:
        files = sorted(folder.glob("*.txt"), key=order)[:count]
        texts += [f.read_text(encoding="utf-8") for f in files]
        labels += [label_value] * len(files)
    return texts, np.asarray(labels, dtype=np.int8)


def copy_to_cache(dataset: str, path: str, source: Path) -> Path:
    """Verify ``source`` and copy it into the cache atomically (a helper for
    readers who fetched a file by hand)."""
    f = REGISTRY[dataset].file(path)
    if not verify(source, f):
        raise DatasetError(f"{source} does not match {dataset}:{path} ({f.checksum})")
    target = cache_dir() / f.path
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        shutil.copyfile(source, tmp.name)
    os.replace(tmp.name, target)
    return target
