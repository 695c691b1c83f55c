"""CIFAR-10 and IMDB: the converted and canonical forms, unpacking, loaders."""

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dlbook import data
from dlbook.data import DataFile, Dataset

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
MIRROR = Path(os.environ.get("DLBOOK_DATA_MIRROR", SHARED))


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _datafile(path: Path, rel: str, url: str = "") -> DataFile:
    blob = path.read_bytes()
    return DataFile(rel, hashlib.sha256(blob).hexdigest(), len(blob), url)


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    mirror.mkdir()
    cache.mkdir()
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("DLBOOK_DATA_DIR", str(cache))
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    saved = dict(data.REGISTRY)
    yield mirror, cache
    data.REGISTRY.clear()
    data.REGISTRY.update(saved)


def test_canonical_cifar_archive_decodes_to_the_mirror_layout(tmp_path, capsys):
    rng = np.random.default_rng(0)
    planes = rng.integers(0, 256, size=(6, 4, 3072), dtype=np.uint8)  # 6 batches of 4 images
    labels = rng.integers(0, 10, size=(6, 4))
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
            batch = {b"data": planes[i], b"labels": labels[i].tolist()}
            _add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(batch))
    arrays = data.decode_cifar10_archive(archive)
    assert arrays["x_train"].shape == (20, 32, 32, 3) and arrays["y_train"].shape == (20, 1)
    assert arrays["x_test"].shape == (4, 32, 32, 3)
    # pixel (row 0, col 1) of the first image: R, G, B planes at offsets 1, 1025, 2049
    assert list(arrays["x_train"][0, 0, 1]) == [planes[0, 0, 1], planes[0, 0, 1025], planes[0, 0, 2049]]
    assert arrays["y_test"][:, 0].tolist() == labels[5].tolist()
    shown = capsys.readouterr().out.splitlines()  # the reader waits: a few plain lines
    assert len(shown) <= 4 and shown[-1].startswith("decoding cifar.tar.gz: 6/6 batches")


def _toy_cifar10(mirror: Path, *, converted: bool, canonical: bool) -> None:
    """Register a toy cifar10 dataset: a converted file with 1 test image (label 1)
    and a canonical archive with 2 (labels 2, 3), each put in the mirror if asked."""
    (mirror / "cifar10").mkdir()
    blank = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    npz = mirror / "cifar10" / "cifar10_train50k_test1k.npz"
    np.savez(npz, x_train=blank, y_train=np.array([[0]], np.uint8), x_test=blank, y_test=np.array([[1]], np.uint8))
    archive = mirror / "cifar10" / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, labels in [(f"data_batch_{k}", [0]) for k in range(1, 6)] + [("test_batch", [2, 3])]:
            batch = {b"data": np.zeros((len(labels), 3072), np.uint8), b"labels": labels}
            _add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(batch))
    files = (_datafile(npz, "cifar10/cifar10_train50k_test1k.npz"),
             _datafile(archive, "cifar10/cifar-10-python.tar.gz", url="https://example.org/cifar.tar.gz"))
    data.register(Dataset("cifar10", "toy", "CC0", "x", files))
    if not converted:
        npz.unlink()
    if not canonical:
        archive.unlink()


@pytest.mark.parametrize(
    "converted, canonical, full_test, test_labels",
    [(True, True, False, [1]),       # default: the converted file, even beside the archive
     (True, True, True, [2, 3]),     # full_test: the canonical archive first
     (True, False, True, [1]),       # full_test without the archive (offline): the converted file
     (False, True, False, [2, 3])],  # default without the converted file: the archive
)
def test_cifar10_full_test_prefers_the_canonical_archive(dirs, capsys, converted, canonical, full_test,
                                                         test_labels):
    mirror, _ = dirs
    _toy_cifar10(mirror, converted=converted, canonical=canonical)
    (x, y), (xt, yt) = data.load_cifar10(full_test=full_test)
    assert yt.tolist() == test_labels and x.shape[1:] == (32, 32, 3)


def test_cifar10_with_neither_form_names_both(dirs):
    mirror, _ = dirs
    _toy_cifar10(mirror, converted=False, canonical=False)
    for full_test in (False, True):
        with pytest.raises(data.DatasetError) as err:
            data.load_cifar10(full_test=full_test)
        message = str(err.value)
        assert "cifar10_train50k_test1k.npz" in message and "cifar-10-python.tar.gz" in message


def _imdb_archive(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for label in ("neg", "pos"):
                for i in range(3):
                    _add(tar, f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt",
                         f"{split} {label} review {i}".encode())
        _add(tar, "aclImdb/train/unsup/0_0.txt", b"unlabelled")
        _add(tar, "aclImdb/train/labeledBow.feat", b"ignored")


@pytest.mark.parametrize("system_tar", [True, False], ids=["system tar", "tarfile"])
def test_imdb_is_unpacked_once_atomically_and_loaded(dirs, monkeypatch, capsys, system_tar):
    mirror, cache = dirs
    if not system_tar:  # a machine without a tar program: Python's tarfile unpacks
        monkeypatch.setattr(data.shutil, "which", lambda name: None)
    (mirror / "imdb").mkdir()
    archive = mirror / "imdb" / "aclImdb_text.tar.gz"
    _imdb_archive(archive)
    data.register(Dataset("imdb", "toy", "CC0", "x", (_datafile(archive, "imdb/aclImdb_text.tar.gz"),
                                                      DataFile("imdb/aclImdb_v1.tar.gz", "", 1, "", md5="0" * 32))))
    # A previous unpack that was interrupted left a half-filled folder without its marker.
    (cache / "imdb" / "aclImdb" / "train").mkdir(parents=True)
    root = data.imdb_dir()
    assert (root / ".complete").is_file() and not (root / "train" / "labeledBow.feat").exists()
    shown = capsys.readouterr().out.splitlines()  # what the reader sees while waiting
    if system_tar:
        assert len(shown) == 1 and shown[0].startswith("unpacking aclImdb_text.tar.gz (") and shown[0].endswith(" s")
    else:
        assert 2 <= len(shown) <= 6 and "\r" not in "".join(shown)
        assert shown[-1].startswith("unpacking aclImdb_text.tar.gz: 13/13 files")
    assert not [p for p in (cache / "imdb").iterdir() if p.name.startswith(".partial-")]
    texts, labels = data.load_imdb("train", n=4)
    assert labels.tolist() == [0, 0, 1, 1] and texts[0] == "train neg review 0"
    texts, labels = data.load_imdb("test")
    assert len(texts) == 6 and labels.dtype == np.int8
    assert data.load_imdb("unsup")[1].tolist() == [-1]
    archive.unlink()  # once unpacked, the archive is not needed again
    assert data.imdb_dir() == root
    with pytest.raises(ValueError):
        data.load_imdb("validation")


def _toy_imdb(mirror: Path) -> DataFile:
    """A small aclImdb archive in the mirror, registered as the mirror form."""
    (mirror / "imdb").mkdir()
    archive = mirror / "imdb" / "aclImdb_text.tar.gz"
    _imdb_archive(archive)
    f = _datafile(archive, "imdb/aclImdb_text.tar.gz")
    data.register(Dataset("imdb", "toy", "CC0", "x", (f, DataFile("imdb/aclImdb_v1.tar.gz", "", 1, "", md5="0" * 32))))
    return f


# A process that calls imdb_dir() as soon as the test says go. Its unpack is
# slowed down so that two such processes are certainly unpacking at once.
_UNPACKER = """
import sys, tarfile, time
from pathlib import Path
from dlbook import data
from dlbook.data import DataFile, Dataset

sha256, size, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
data.register(Dataset("imdb", "toy", "CC0", "x", (
    DataFile("imdb/aclImdb_text.tar.gz", sha256, size),
    DataFile("imdb/aclImdb_v1.tar.gz", "", 1, "", md5="0" * 32),
)))
extractall = tarfile.TarFile.extractall

def slow_extractall(self, *args, **kwargs):
    time.sleep(1.0)
    return extractall(self, *args, **kwargs)

tarfile.TarFile.extractall = slow_extractall
print("ready", flush=True)
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
print(data.imdb_dir(), flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="the unpack lock needs fcntl")
def test_two_processes_unpacking_imdb_at_once_both_succeed(dirs, tmp_path):
    mirror, cache = dirs
    f = _toy_imdb(mirror)
    go = tmp_path / "go"
    src = Path(data.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _UNPACKER, f.sha256, str(f.size), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        go.touch()
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    target = cache / "imdb" / "aclImdb"
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert out.strip().splitlines()[-1] == str(target)
    assert sum(out.startswith("unpacking ") for out, _ in results) == 1  # one unpacked, the other waited
    assert (target / ".complete").is_file() and len(list((target / "train" / "pos").iterdir())) == 3
    assert not [p for p in (cache / "imdb").iterdir() if p.name.startswith(".partial-")]


@pytest.mark.skipif(sys.platform == "win32", reason="the unpack lock needs fcntl")
def test_imdb_dir_waits_for_the_lock_and_rechecks_the_marker(dirs):
    import fcntl

    mirror, cache = dirs
    _toy_imdb(mirror)
    target = cache / "imdb" / "aclImdb"
    target.parent.mkdir(parents=True)
    results: list[object] = []
    with open(data._imdb_lock_path(), "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # another process is unpacking...
        worker = threading.Thread(target=lambda: results.append(data.imdb_dir()))
        worker.start()
        time.sleep(0.3)
        assert results == [] and worker.is_alive()  # ...so imdb_dir waits
        (target / "train").mkdir(parents=True)  # ...and finishes a (different) unpack
        (target / ".complete").write_text("unpacked by the other process\n")
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    worker.join(10)
    assert results == [target]
    assert (target / ".complete").read_text() == "unpacked by the other process\n"  # not redone


def test_imdb_unpack_sweeps_stale_partial_folders(dirs):
    mirror, cache = dirs
    _toy_imdb(mirror)
    stale, fresh = cache / "imdb" / ".partial-killed", cache / "imdb" / ".partial-running"
    (stale / "aclImdb").mkdir(parents=True)
    fresh.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    root = data.imdb_dir()
    assert (root / ".complete").is_file()
    assert not stale.exists() and fresh.exists()


def test_imdb_missing_everywhere_names_both_forms(dirs):
    with pytest.raises(data.DatasetError) as err:
        data.imdb_dir()
    message = str(err.value)
    assert "aclImdb_text.tar.gz" in message and "aclImdb_v1.tar.gz" in message and "MD5" in message


def test_md5_only_files_are_verified_by_md5(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    good = DataFile("x.bin", "", 3, md5=hashlib.md5(b"abc").hexdigest())
    bad = DataFile("x.bin", "", 3, md5="0" * 32)
    assert data.verify(f, good) and not data.verify(f, bad)
    assert good.checksum.startswith("MD5 ")


@pytest.mark.skipif(not (MIRROR / "cifar10").exists(), reason="offline data mirror not available")
def test_cifar10_from_mirror(monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(MIRROR))
    (x, y), (xt, yt) = data.load_cifar10(n_train=500, n_test=10)
    assert x.shape == (500, 32, 32, 3) and x.dtype == np.uint8 and y.shape == (500,)
    assert y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]  # SOURCES.md's published check
    assert yt[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert len(data.CIFAR10_CLASSES) == 10
