"""CIFAR-10 and IMDB: the converted and canonical forms, unpacking, loaders."""

import hashlib
import io
import os
import pickle
import tarfile
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


def test_canonical_cifar_archive_decodes_to_the_mirror_layout(tmp_path):
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


def _imdb_archive(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for label in ("neg", "pos"):
                for i in range(3):
                    _add(tar, f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt",
                         f"{split} {label} review {i}".encode())
        _add(tar, "aclImdb/train/unsup/0_0.txt", b"unlabelled")
        _add(tar, "aclImdb/train/labeledBow.feat", b"ignored")


def test_imdb_is_unpacked_once_atomically_and_loaded(dirs):
    mirror, cache = dirs
    (mirror / "imdb").mkdir()
    archive = mirror / "imdb" / "aclImdb_text.tar.gz"
    _imdb_archive(archive)
    data.register(Dataset("imdb", "toy", "CC0", "x", (_datafile(archive, "imdb/aclImdb_text.tar.gz"),
                                                      DataFile("imdb/aclImdb_v1.tar.gz", "", 1, "", md5="0" * 32))))
    # A previous unpack that was interrupted left a half-filled folder without its marker.
    (cache / "imdb" / "aclImdb" / "train").mkdir(parents=True)
    root = data.imdb_dir()
    assert (root / ".complete").is_file() and not (root / "train" / "labeledBow.feat").exists()
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
