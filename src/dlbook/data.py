"""The book's data registry: every dataset declared once, every file verified.

Each :class:`Dataset` lists its files. A file is looked for, in order:

1. in the mirror folder named by ``DLBOOK_DATA_MIRROR`` (a folder laid out like
   the book's offline mirror: ``mnist/mnist.npz``, ``shakespeare/input.txt``,
   ...), read in place and never written to;
2. in the cache folder (``data/`` at the top of a checkout of the book,
   ``~/.cache/dlbook`` elsewhere, or ``DLBOOK_DATA_DIR``);
3. at the mirror URL, when ``DLBOOK_DATA_MIRROR`` is an ``http://`` or
   ``https://`` address instead of a folder (an institutional mirror, or the
   book's own mirror served on loopback): ``<url>/<path>`` is downloaded into
   the cache. This works for files that have no canonical address (the
   converted CIFAR-10 file, the repacked IMDB archive), and even when a caller
   passes ``download=False`` or ``DLBOOK_OFFLINE=1`` is set: a mirror the user
   configured is not "the internet";
4. at the file's canonical address on the internet, downloaded into the cache,
   unless the caller passes ``download=False`` or ``DLBOOK_OFFLINE`` is set
   (to anything but ``0``).

Downloads need nothing beyond the standard library: each streams into a
``.partial-*`` file beside its target, shows one quiet progress line, stops as
soon as more bytes arrive than declared, is checked against its SHA-256 (or the
publisher's MD5 where that is all there is), and only then is renamed into
place. A failed or rejected download leaves nothing behind; ``.partial-*``
leftovers of killed runs are swept once they are an hour old.

Every file is checked before use; a file that fails the check is never used.
When no verified copy can be had, one :class:`DatasetError` says which dataset
and file, the checksum expected, every source tried and why it failed, and how
to fix it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from .records import book_root

MIRROR_ENV = "DLBOOK_DATA_MIRROR"
CACHE_ENV = "DLBOOK_DATA_DIR"
OFFLINE_ENV = "DLBOOK_OFFLINE"

PARTIAL_PREFIX = ".partial-"
"""Name prefix of temporary downloads and unpacks, beside their targets."""
STALE_PARTIAL_S = 3600
"""``.partial-*`` entries untouched for this many seconds are leftovers of a killed run."""
DOWNLOAD_TIMEOUT_S = 60
"""Seconds a download may wait for the server (to connect, or for more bytes)."""
_CHUNK = 1 << 20


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
_MISSING = "missing"


def _remember(path: Path, expected: DataFile, good: bool) -> None:
    st = path.stat()
    _VERIFIED[(str(path.resolve()), st.st_size, st.st_mtime, expected.checksum)] = good


def _problem(path: Path, expected: DataFile) -> str | None:
    """None if ``path`` is a good copy of ``expected``, else why not (``_MISSING``
    when there is nothing at ``path``)."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return _MISSING
    except OSError as err:
        return f"unreadable: {type(err).__name__}: {err}"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size != expected.size:
        return (
            f"checksum mismatch: {st.st_size:,} bytes where {expected.size:,} are expected; "
            "truncated, corrupt or a different version"
        )
    key = (str(path.resolve()), st.st_size, st.st_mtime, expected.checksum)
    if key not in _VERIFIED:
        try:
            if expected.sha256:
                _VERIFIED[key] = sha256_of(path) == expected.sha256
            else:
                _VERIFIED[key] = sha256_of(path, algorithm="md5") == expected.md5
        except OSError as err:
            return f"unreadable: {type(err).__name__}: {err}"
    if not _VERIFIED[key]:
        return "checksum mismatch: corrupt or a different version"
    return None


def verify(path: Path, expected: DataFile) -> bool:
    """True if ``path`` is a readable regular file with the expected size and
    checksum (SHA-256, or MD5 where only that is declared).

    Results are remembered per (path, size, mtime, expected checksum) within a
    process, so a chapter that loads a file twice hashes it once. A file that
    cannot be read counts as not verified (no exception).
    """
    return _problem(path, expected) is None


def cache_dir() -> Path:
    """The cache folder: ``DLBOOK_DATA_DIR``, else ``data/`` of the book checkout
    that the working directory is in, else ``~/.cache/dlbook``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    root = book_root()
    if root is not None:
        return root / "data"
    return Path.home() / ".cache" / "dlbook"


def _is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def mirror_dir() -> Path | None:
    """The mirror folder named by ``DLBOOK_DATA_MIRROR``; None when it is unset
    or names a URL (see :func:`mirror_url`)."""
    env = os.environ.get(MIRROR_ENV, "")
    return Path(env).expanduser() if env and not _is_url(env) else None


def mirror_url() -> str | None:
    """The mirror's base URL, when ``DLBOOK_DATA_MIRROR`` is an ``http://`` or
    ``https://`` address (without a trailing slash); None otherwise."""
    env = os.environ.get(MIRROR_ENV, "").strip()
    return env.rstrip("/") if _is_url(env) else None


def _offline() -> str | None:
    """The value of ``DLBOOK_OFFLINE`` when it switches canonical downloads off."""
    value = os.environ.get(OFFLINE_ENV, "")
    return None if value in ("", "0") else value


def _lookup(dataset: str, path: str | None) -> tuple[Dataset, DataFile]:
    if dataset not in REGISTRY:
        raise DatasetError(
            f"unknown dataset {dataset!r}; registered: {', '.join(sorted(REGISTRY))}"
        )
    ds = REGISTRY[dataset]
    if path is None:
        if len(ds.files) != 1:
            raise DatasetError(
                f"dataset {dataset!r} has several files; name one of: "
                + ", ".join(f.path for f in ds.files)
            )
        return ds, ds.files[0]
    try:
        return ds, ds.file(path)
    except KeyError:
        raise DatasetError(
            f"dataset {dataset!r} declares no file {path!r}; its files: "
            + ", ".join(f.path for f in ds.files)
        ) from None


def _fix_hint(f: DataFile, *, download: bool) -> str:
    folder, base = mirror_dir(), mirror_url()
    example = "for example ../shared/data in the book's CI"
    if base is not None:
        hints = [f"check that the mirror {base} ({MIRROR_ENV}) serves {base}/{f.path}"]
    elif folder is not None and not folder.is_dir():
        hints = [
            f"{MIRROR_ENV} names {folder}, which does not exist: point it at a folder "
            f"holding {f.path} ({example}) or at the URL of a mirror"
        ]
    else:
        hints = [f"set {MIRROR_ENV} to a folder holding {f.path} ({example}) or to the URL of a mirror"]
    offline = _offline()
    if f.url and offline is not None:
        hints.append(
            f"downloads are switched off by {OFFLINE_ENV}={offline}: unset it to download from {f.url}"
        )
    elif f.url and download:
        hints.append(f"connect to the internet once so it can be downloaded from {f.url}")
    hints.append(f"place a good copy at {cache_dir() / f.path}")
    return "; or ".join(hints)


# --------------------------------------------------------------------------
# Downloading


def _sweep_partials(folder: Path, max_age_s: float = STALE_PARTIAL_S) -> list[Path]:
    """Remove ``.partial-*`` files and folders in ``folder`` untouched for
    ``max_age_s`` seconds (left by killed runs); returns what was removed."""
    cutoff = time.time() - max_age_s
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PARTIAL_PREFIX):
            continue
        try:
            if entry.lstat().st_mtime > cutoff:
                continue  # possibly another process's download in progress
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


def _human(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


class _Progress:
    """One quiet progress display for one download.

    On a terminal, a single line redrawn with ``\\r`` (at most ten times a
    second); elsewhere (Jupyter, CI logs) one line that grows by a step every
    10%: ``downloading x (11.5 MB) from host: 0% 10% ... 100%``. It goes to
    standard output: on a book page, standard error is flagged as log spam.
    """

    def __init__(self, label: str, total: int, url: str, stream: IO[str] | None = None):
        self.stream = stream if stream is not None else sys.stdout
        self.total = max(total, 1)
        host = urllib.parse.urlsplit(url).netloc or urllib.parse.urlsplit(url).scheme
        self.head = f"downloading {label} ({_human(total)}) from {host}:"
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.done = 0
        self.shown = -1
        self.drawn_at = 0.0
        self.started = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not fail a download
            pass

    def start(self) -> None:
        self.started = True
        self._show(force=True)

    def update(self, n: int) -> None:
        self.done += n
        self._show()

    def _show(self, force: bool = False) -> None:
        percent = min(100, self.done * 100 // self.total)
        if self.tty:
            now = time.monotonic()
            if percent != self.shown and (force or percent == 100 or now - self.drawn_at >= 0.1):
                self._write(f"\r{self.head} {percent:3d}%")
                self.shown, self.drawn_at = percent, now
        else:
            step = percent // 10 * 10
            if step > self.shown:
                self._write((self.head if self.shown < 0 else "") + f" {step}%")
                self.shown = step

    def finish(self, ok: bool) -> None:
        if self.started:
            self._write("\n" if ok else " failed\n")
            self.started = False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open_url(url: str):  # noqa: ANN202 - an http.client.HTTPResponse or urllib's addinfourl
    request = urllib.request.Request(url, headers={"User-Agent": "dlbook"})
    handlers = []
    if _is_loopback(urllib.parse.urlsplit(url).hostname or ""):
        handlers.append(urllib.request.ProxyHandler({}))  # a loopback mirror never goes via a proxy
    return urllib.request.build_opener(*handlers).open(request, timeout=DOWNLOAD_TIMEOUT_S)


def _download(f: DataFile, target: Path, url: str | None = None, *, stream: IO[str] | None = None) -> None:
    """Download ``f`` from ``url`` (its canonical address by default) to ``target``.

    The bytes stream into a ``.partial-*`` file beside ``target`` and are hashed
    on the way; the download is refused when the server announces another size,
    stopped as soon as more bytes than declared arrive, and rejected when short
    or when the checksum differs. Only a verified file is renamed into place, so
    a failed download leaves nothing behind. Rejections raise DatasetError;
    network failures raise what urllib raises.
    """
    url = url or f.url
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_partials(target.parent)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX, suffix="-" + target.name)
    tmp = Path(tmp_name)
    progress = _Progress(f.path, f.size, url, stream)
    ok = False
    try:
        digest = hashlib.sha256() if f.sha256 else hashlib.md5()
        with os.fdopen(fd, "wb") as out, _open_url(url) as response:
            announced = (response.headers.get("Content-Length") or "").strip()
            if announced.isdigit() and int(announced) != f.size:
                raise DatasetError(
                    f"the server announced {int(announced):,} bytes, not the declared {f.size:,}"
                )
            progress.start()
            received = 0
            # Ask for one byte more than the declared size can hold, to notice excess at once.
            while block := response.read(min(_CHUNK, f.size - received + 1)):
                received += len(block)
                if received > f.size:
                    raise DatasetError(f"more than the declared {f.size:,} bytes arrived")
                digest.update(block)
                out.write(block)
                progress.update(len(block))
            if received != f.size:
                raise DatasetError(f"only {received:,} of the declared {f.size:,} bytes arrived")
            if digest.hexdigest() != (f.sha256 or f.md5):
                raise DatasetError(f"it does not match the expected {f.checksum}")
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the cache from other users
        os.replace(tmp, target)
        ok = True
    finally:
        progress.finish(ok)
        if not ok:
            tmp.unlink(missing_ok=True)
    _remember(target, f, True)  # just hashed on the way in


def fetch(dataset: str, path: str | None = None, *, download: bool = True) -> Path:
    """Return a verified local path to one file of a registered dataset.

    Sources are tried in the order of the module docstring: the mirror folder
    (in place), the cache, the mirror URL, the canonical URL. A source that is
    missing, unreadable, corrupt or unreachable is one more failed source; the
    next one is tried.

    Args:
        dataset: a name in :data:`REGISTRY` (``"mnist"``).
        path: the file's registry path; may be omitted for one-file datasets.
        download: whether to try the file's canonical address on the internet
            when neither mirror nor cache has a good copy. A mirror URL set in
            ``DLBOOK_DATA_MIRROR`` is tried either way, and so is it when
            ``DLBOOK_OFFLINE`` is set: that switches off canonical downloads only.

    Raises:
        DatasetError: for an unknown dataset or undeclared file, or, when no
            verified copy is available, naming the dataset, the file, the
            expected checksum, every source tried and how to fix it.
    """
    ds, f = _lookup(dataset, path)

    tried: list[str] = []
    folder = mirror_dir()
    if folder is not None:
        if not folder.is_dir():
            tried.append(f"the mirror folder {folder} named by {MIRROR_ENV} (it does not exist)")
        else:
            candidate = folder / f.path
            problem = _problem(candidate, f)
            if problem is None:
                return candidate
            if problem != _MISSING:
                tried.append(f"{candidate} ({problem})")
    cached = cache_dir() / f.path
    problem = _problem(cached, f)
    if problem is None:
        return cached
    if problem != _MISSING:
        tried.append(f"{cached} ({problem})")

    urls = []
    base = mirror_url()
    if base is not None:
        urls.append(f"{base}/{urllib.parse.quote(f.path)}")
    if download and f.url and _offline() is None:
        urls.append(f.url)
    for url in urls:
        try:
            _download(f, cached, url)
            return cached
        except DatasetError as err:
            tried.append(f"download from {url} rejected: {err}; the file was discarded")
        except Exception as err:  # network errors come in many types
            tried.append(f"download from {url} failed: {type(err).__name__}: {err}")

    found = "; ".join(tried) if tried else "no copy found"
    raise DatasetError(
        f"dataset {ds.name!r}: no verified copy of {f.path} "
        f"(expected {f.checksum}, {f.size:,} bytes). Tried: {found}. "
        f"To fix: {_fix_hint(f, download=download)}."
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

    from .progress import LineProgress

    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    progress = LineProgress(f"decoding {path.name}", total=6, unit="batches of 10,000 images", lines=3)
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if name.startswith("data_batch_") or name == "test_batch":
                progress.update()
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
    n_train: int | None = None, n_test: int | None = None, *, full_test: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 as NumPy arrays.

    By default uses the converted mirror file when the ``DLBOOK_DATA_MIRROR``
    folder, the cache or the mirror URL has it, else the canonical archive
    (downloaded once; the converted file has no canonical address). Both decode
    to the same arrays, except that the offline mirror holds only the first
    1,000 of the 10,000 test images.

    With ``full_test=True`` the canonical archive, with all 10,000 test images,
    comes first (from the mirror folder, the cache, a mirror URL or the
    internet, unless ``DLBOOK_OFFLINE`` is set), and the converted file is the
    fallback when it cannot be had. The caller learns which from the number of
    test images returned (``n_test`` permitting).

    Args:
        n_train: keep the first ``n_train`` training images (None: all 50,000).
        n_test: keep the first ``n_test`` test images (None: all available).
        full_test: prefer the canonical archive's full test set to the
            converted file's first 1,000 test images.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: images ``uint8`` of shape
        ``(n, 32, 32, 3)`` (RGB, 0-255), labels ``uint8`` of shape ``(n,)``,
        0-9 in the order of :data:`CIFAR10_CLASSES`.
    """

    def converted() -> dict[str, np.ndarray]:
        path = fetch("cifar10", "cifar10/cifar10_train50k_test1k.npz", download=False)
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}

    def canonical() -> dict[str, np.ndarray]:
        return decode_cifar10_archive(fetch("cifar10", "cifar10/cifar-10-python.tar.gz"))

    first, second = (canonical, converted) if full_test else (converted, canonical)
    try:
        arrays = first()
    except DatasetError as first_error:
        try:
            arrays = second()
        except DatasetError as second_error:
            raise DatasetError(f"{second_error}\nThe other form was not found either: {first_error}") from None
    train = _take(arrays["x_train"], arrays["y_train"].reshape(-1), n_train)
    test = _take(arrays["x_test"], arrays["y_test"].reshape(-1), n_test)
    return train, test




IMDB_ARCHIVES = ("imdb/aclImdb_text.tar.gz", "imdb/aclImdb_v1.tar.gz")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if need be) for the
    duration; no lock where ``fcntl`` or ``flock`` is unavailable."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; imdb_dir copes with a lost race
        fcntl = None
    if fcntl is None:
        yield
        return
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            locked = True
        except OSError:  # a file system without flock: go on unlocked
            locked = False
        try:
            yield
        finally:
            if locked:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _imdb_lock_path() -> Path:
    return cache_dir() / "imdb" / ".aclImdb.lock"


def _extract_reviews(archive: Path, folder: Path) -> None:
    """Unpack the reviews of a verified IMDB archive into ``folder`` (not the
    ``.feat`` bag-of-words files). The system's ``tar`` where there is one: it
    writes the 100,000 small files about ten times faster than ``tarfile``
    (5 s against 55 s on a two-core machine); GNU and BSD tar refuse member
    names with ``..`` and strip a leading ``/``, like ``tarfile``'s data filter."""
    import tarfile

    from .progress import LineProgress, duration

    start = time.monotonic()
    tar_cmd = shutil.which("tar")
    if tar_cmd is not None:
        print(f"unpacking {archive.name} ({_human(archive.stat().st_size)}) with tar ...", end="", flush=True)
        done = subprocess.run(
            [tar_cmd, "-xzf", str(archive), "-C", str(folder), "--exclude=*.feat", "--no-same-owner"],
            capture_output=True, text=True,
        )
        print(f" {duration(time.monotonic() - start)}" if done.returncode == 0 else " failed; trying tarfile",
              flush=True)
        if done.returncode == 0:
            return
        shutil.rmtree(folder / "aclImdb", ignore_errors=True)  # then try tarfile on the same archive
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if not m.name.endswith(".feat")]
        progress = LineProgress(f"unpacking {archive.name}", total=len(members), unit="files")
        for member in members:
            try:
                tar.extract(member, folder, filter="data")
            except TypeError:  # Python without extraction filters
                tar.extract(member, folder)  # noqa: S202 - verified archive
            progress.update()


def imdb_dir() -> Path:
    """The unpacked ``aclImdb/`` folder in the cache, unpacked once.

    The archive (mirror form first, else the canonical download) is unpacked
    into a temporary folder beside the target, a marker file is written, and
    the folder is renamed into place: an interrupted unpack leaves only a
    temporary folder (swept once stale), never a half-filled ``aclImdb/``.
    Processes that ask at the same time take turns on a lock file in the
    cache's ``imdb/`` folder; the one that waited finds the marker and unpacks
    nothing. A folder with its marker is never deleted.
    """

    target = cache_dir() / "imdb" / "aclImdb"
    marker = target / ".complete"
    if marker.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(_imdb_lock_path()):
        if marker.is_file():  # unpacked by another process while this one waited
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
        _sweep_partials(target.parent)
        if target.is_dir() and not target.is_symlink():  # an older, unmarked unpack: redo it
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=PARTIAL_PREFIX) as tmp:
            _extract_reviews(archive, Path(tmp))
            unpacked = Path(tmp) / "aclImdb"
            (unpacked / ".complete").write_text(f"unpacked from {archive.name}\n")
            try:
                os.replace(unpacked, target)
            except OSError:
                if marker.is_file():  # lost a race where no lock could be had: use the winner's
                    return target
                raise
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

