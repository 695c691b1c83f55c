"""The data registry: verified files, clear errors, atomic writes, loaders."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from dlbook import data
from dlbook.data import DataFile, Dataset, DatasetError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
MIRROR = Path(os.environ.get("DLBOOK_DATA_MIRROR", SHARED))
needs_mirror = pytest.mark.skipif(
    not (MIRROR / "mnist" / "mnist.npz").exists(), reason="offline data mirror not available"
)

PAYLOAD = b"tiny dataset\n" * 10


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A one-file dataset, an empty mirror and an empty cache."""
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    (mirror / "toy").mkdir(parents=True)
    cache.mkdir()
    origin = tmp_path / "origin.txt"
    origin.write_bytes(PAYLOAD)
    f = DataFile("toy/toy.txt", hashlib.sha256(PAYLOAD).hexdigest(), len(PAYLOAD), origin.as_uri())
    data.register(Dataset("toy", "a toy", "CC0", "https://example.org", (f,)))
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("DLBOOK_DATA_DIR", str(cache))
    monkeypatch.delenv("DLBOOK_OFFLINE", raising=False)
    yield mirror, cache, f
    data.REGISTRY.pop("toy", None)


def test_mirror_file_is_used_in_place(toy):
    mirror, cache, f = toy
    (mirror / f.path).write_bytes(PAYLOAD)
    assert data.fetch("toy") == mirror / f.path
    assert not (cache / f.path).exists()  # the mirror is read, never copied beside


def test_cache_file_is_used_when_mirror_lacks_it(toy):
    mirror, cache, f = toy
    (cache / "toy").mkdir()
    (cache / f.path).write_bytes(PAYLOAD)
    assert data.fetch("toy") == cache / f.path


def test_corrupt_mirror_file_is_never_used(toy, monkeypatch):
    mirror, cache, f = toy
    (mirror / f.path).write_bytes(PAYLOAD[:-1] + b"X")
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    with pytest.raises(DatasetError) as err:
        data.fetch("toy")
    message = str(err.value)
    assert "toy/toy.txt" in message and f.sha256 in message
    assert "checksum mismatch" in message and "DLBOOK_DATA_MIRROR" in message


def test_corrupt_cache_file_is_replaced_by_download(toy):
    mirror, cache, f = toy
    (cache / "toy").mkdir()
    (cache / f.path).write_bytes(b"truncated")
    path = data.fetch("toy")
    assert path.read_bytes() == PAYLOAD


def test_missing_offline_is_one_clear_error(toy, monkeypatch):
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    with pytest.raises(DatasetError) as err:
        data.fetch("toy")
    message = str(err.value)
    assert "'toy'" in message and "no copy found" in message
    assert "connect to the internet" in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_download_is_verified_and_atomic(toy):
    mirror, cache, f = toy
    path = data.fetch("toy")
    assert path == cache / f.path and path.read_bytes() == PAYLOAD
    leftovers = [p.name for p in (cache / "toy").iterdir() if p.name != "toy.txt"]
    assert leftovers == []


def test_download_with_wrong_checksum_is_discarded(toy, tmp_path):
    mirror, cache, f = toy
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"x" * len(PAYLOAD))
    data.register(Dataset("toy", "a toy", "CC0", "", (DataFile(f.path, f.sha256, f.size, bad.as_uri()),)))
    with pytest.raises(DatasetError, match="discarded"):
        data.fetch("toy")
    assert not (cache / f.path).exists()


def test_unreachable_download_is_a_clear_error(toy):
    mirror, cache, f = toy
    data.register(
        Dataset("toy", "a toy", "CC0", "", (DataFile(f.path, f.sha256, f.size, "file:///nonexistent/x"),))
    )
    with pytest.raises(DatasetError, match="download from file:///nonexistent/x failed"):
        data.fetch("toy")


def test_unknown_dataset_and_file():
    with pytest.raises(DatasetError, match="unknown dataset"):
        data.fetch("imagenet")
    with pytest.raises(KeyError):
        data.REGISTRY["mnist"].file("mnist/nope.npz")


def test_cache_dir_is_the_books_data_folder(monkeypatch):
    monkeypatch.delenv("DLBOOK_DATA_DIR", raising=False)
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root / "chapters")
    assert data.cache_dir() == root / "data"


def test_registry_entries_are_complete():
    for ds in data.REGISTRY.values():
        assert ds.description and ds.licence and ds.homepage and ds.files
        for f in ds.files:
            assert (len(f.sha256) == 64 or len(f.md5) == 32) and f.size > 0


@needs_mirror
def test_mnist_from_mirror(monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(MIRROR))
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert set(np.unique(y_train)) == set(range(10)) and x_train.max() == 255


@needs_mirror
def test_mnist_subset(monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(MIRROR))
    (x, y), (xt, yt) = data.load_mnist(n_train=100, n_test=20)
    assert x.shape == (100, 28, 28) and y.shape == (100,) and xt.shape == (20, 28, 28)


@needs_mirror
def test_shakespeare_from_mirror(monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(MIRROR))
    text = data.load_shakespeare()
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
