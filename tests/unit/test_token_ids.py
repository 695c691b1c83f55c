import os

import numpy as np
import pytest

from dlbook.token_ids import ids_key, ids_path, load_token_ids, save_token_ids


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA_DIR", str(tmp_path))
    return tmp_path


def test_key_is_stable_and_depends_on_settings():
    a = ids_key("imdb", vocab_size=100, length=8)
    assert a == ids_key("imdb", length=8, vocab_size=100)
    assert a != ids_key("imdb", vocab_size=101, length=8)
    assert a.startswith("imdb-")
    with pytest.raises(ValueError):
        ids_key("a/b", x=1)


def test_round_trip_in_the_cache(cache):
    arrays = {
        "x_train": np.arange(12, dtype=np.int32).reshape(3, 4),
        "y_train": np.array([0, 1, 1], dtype=np.int8),
        "vocabulary": np.asarray(["", "[UNK]", "the", "café"], dtype=str),
    }
    path = save_token_ids("demo", arrays)
    assert path == ids_path("demo") and path.parent == cache / "token_ids"
    loaded = load_token_ids("demo")
    assert set(loaded) == set(arrays)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)
    assert not list(path.parent.glob(".partial-*"))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0o600


def test_missing_file_gives_none(cache):
    assert load_token_ids("nothing-here") is None


def test_object_arrays_are_refused_and_nothing_is_left(cache):
    with pytest.raises(TypeError):
        save_token_ids("bad", {"texts": np.array(["a", None], dtype=object)})
    assert load_token_ids("bad") is None
    assert not list((cache / "token_ids").glob("*"))


def test_interrupted_save_leaves_no_file(cache, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        save_token_ids("half", {"x": np.zeros(3)})
    assert load_token_ids("half") is None
    assert not list((cache / "token_ids").glob("*"))
