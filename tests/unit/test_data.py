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
    assert "switched off by DLBOOK_OFFLINE" in message  # not "connect to the internet"
    assert "connect to the internet" not in message
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
    with pytest.raises(DatasetError, match="download from file:///nonexistent/x failed") as err:
        data.fetch("toy")
    assert "connect to the internet" in str(err.value)  # online: the advice still applies


def test_unknown_dataset_and_file():
    with pytest.raises(DatasetError, match="unknown dataset"):
        data.fetch("imagenet")
    with pytest.raises(KeyError):
        data.REGISTRY["mnist"].file("mnist/nope.npz")


def test_undeclared_file_is_a_dataset_error_naming_the_declared_files():
    with pytest.raises(DatasetError) as err:
        data.fetch("cifar10", "cifar10/nope.npz")
    message = str(err.value)
    assert "cifar10/nope.npz" in message
    assert "cifar10/cifar10_train50k_test1k.npz" in message and "cifar10/cifar-10-python.tar.gz" in message


def test_missing_mirror_folder_is_named(toy, tmp_path, monkeypatch):
    nowhere = tmp_path / "no-such-mirror"
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(nowhere))
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    with pytest.raises(DatasetError) as err:
        data.fetch("toy")
    message = str(err.value)
    assert f"{nowhere} named by DLBOOK_DATA_MIRROR (it does not exist)" in message
    assert "switched off by DLBOOK_OFFLINE" in message and "connect to the internet" not in message


def test_unreadable_mirror_file_is_one_failed_source(toy, monkeypatch):
    mirror, cache, f = toy
    (mirror / f.path).write_bytes(PAYLOAD)
    (cache / "toy").mkdir()
    (cache / f.path).write_bytes(PAYLOAD)
    real_sha256_of = data.sha256_of

    def unreadable_in_mirror(path, *args, **kwargs):
        if Path(path).is_relative_to(mirror):
            raise PermissionError(13, "Permission denied", str(path))
        return real_sha256_of(path, *args, **kwargs)

    monkeypatch.setattr(data, "sha256_of", unreadable_in_mirror)
    data._VERIFIED.clear()
    assert data.fetch("toy") == cache / f.path  # the good cached copy is still used
    (cache / f.path).unlink()
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    with pytest.raises(DatasetError) as err:
        data.fetch("toy")
    message = str(err.value)
    assert f"{mirror / f.path} (unreadable: PermissionError" in message and "no copy found" not in message


def test_folder_in_the_mirror_where_a_file_is_expected(toy, monkeypatch):
    mirror, cache, f = toy
    (mirror / f.path).mkdir()
    (cache / "toy").mkdir()
    (cache / f.path).write_bytes(PAYLOAD)
    assert data.fetch("toy") == cache / f.path
    (cache / f.path).unlink()
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    with pytest.raises(DatasetError, match="not a regular file"):
        data.fetch("toy")


def test_mirror_setting_is_a_folder_or_a_url(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(tmp_path))
    assert data.mirror_dir() == tmp_path and data.mirror_url() is None
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", "HTTPS://mirror.example.org/dlbook/")
    assert data.mirror_dir() is None and data.mirror_url() == "HTTPS://mirror.example.org/dlbook"
    monkeypatch.delenv("DLBOOK_DATA_MIRROR")
    assert data.mirror_dir() is None and data.mirror_url() is None


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
