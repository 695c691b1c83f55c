"""Downloads over HTTP: URL mirrors, the streaming downloader and its limits.

Every test talks to a real HTTP server on the loopback interface (port 0, one
thread), serving a temporary folder; some paths are answered by a hand-written
route that misbehaves (lies about the size, never stops, stops too early).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from dlbook import data
from dlbook.data import DataFile, Dataset, DatasetError

PAYLOAD = np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()
REL = "toy/blob.bin"


class Server:
    """A loopback HTTP server that serves ``root``, records the paths asked
    for, and hands paths listed in ``routes`` to a custom responder."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        self.routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]] = {}
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                server.requests.append(self.path)
                route = server.routes.get(self.path)
                if route is None:
                    super().do_GET()
                else:
                    route(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def put(self, rel: str, payload: bytes) -> None:
        (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.root / rel).write_bytes(payload)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(tmp_path):
    """A factory of loopback servers, each serving its own empty folder."""
    servers: list[Server] = []

    def start(name: str) -> Server:
        root = tmp_path / f"served-{name}"
        root.mkdir()
        servers.append(Server(root))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """An empty cache, downloads allowed, no mirror, and a registry restored afterwards.

    Returns a function that registers the toy dataset with one file."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("DLBOOK_DATA_DIR", str(cache))
    monkeypatch.delenv("DLBOOK_DATA_MIRROR", raising=False)
    monkeypatch.delenv("DLBOOK_OFFLINE", raising=False)
    saved = dict(data.REGISTRY)

    def declare(url: str = "", payload: bytes = PAYLOAD, **checksums: str) -> DataFile:
        sha = checksums.get("sha256", hashlib.sha256(payload).hexdigest())
        f = DataFile(REL, sha, len(payload), url, md5=checksums.get("md5", ""))
        data.register(Dataset("toy", "a toy", "CC0", "https://example.org", (f,)))
        return f

    yield cache, declare
    data.REGISTRY.clear()
    data.REGISTRY.update(saved)


def _leftovers(cache: Path) -> list[str]:
    folder = cache / "toy"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------
# URL mirrors


def test_url_mirror_serves_a_file_without_canonical_url_even_offline(toy, serve, monkeypatch):
    cache, declare = toy
    declare()  # no canonical url: the file exists only in mirrors
    mirror = serve("mirror")
    mirror.put(REL, PAYLOAD)
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", mirror.url + "/")
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")  # forbids the internet, not a configured mirror
    assert data.mirror_url() == mirror.url and data.mirror_dir() is None
    path = data.fetch("toy", download=False)
    assert path == cache / REL and path.read_bytes() == PAYLOAD
    assert mirror.requests == ["/" + REL]
    assert _leftovers(cache) == ["blob.bin"]
    assert data.fetch("toy", download=False) == path and mirror.requests == ["/" + REL]  # cached now


def test_url_mirror_is_tried_before_the_canonical_url(toy, serve, monkeypatch):
    cache, declare = toy
    mirror, origin = serve("mirror"), serve("origin")
    mirror.put(REL, PAYLOAD)
    origin.put("blob.bin", PAYLOAD)
    declare(url=origin.url + "/blob.bin")
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", mirror.url)
    assert data.fetch("toy").read_bytes() == PAYLOAD
    assert mirror.requests == ["/" + REL] and origin.requests == []


def test_url_mirror_without_the_file_falls_back_to_the_canonical_url(toy, serve, monkeypatch):
    cache, declare = toy
    mirror, origin = serve("mirror"), serve("origin")
    origin.put("blob.bin", PAYLOAD)
    declare(url=origin.url + "/blob.bin")
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", mirror.url)
    assert data.fetch("toy").read_bytes() == PAYLOAD
    assert mirror.requests == ["/" + REL] and origin.requests == ["/blob.bin"]


def test_url_mirror_with_a_bad_copy_is_one_failed_source(toy, serve, monkeypatch):
    cache, declare = toy
    mirror = serve("mirror")
    mirror.put(REL, PAYLOAD[:-1] + b"X")
    declare(url="https://example.org/blob.bin")
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", mirror.url)
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    with pytest.raises(DatasetError) as err:
        data.fetch("toy")
    message = str(err.value)
    assert f"{mirror.url}/{REL}" in message and "discarded" in message
    assert "switched off by DLBOOK_OFFLINE" in message and "connect to the internet" not in message
    assert _leftovers(cache) == []


def test_load_cifar10_reads_the_converted_form_from_a_url_mirror(toy, serve, monkeypatch, tmp_path):
    cache, _ = toy
    rng = np.random.default_rng(1)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(6, dtype=np.uint8).reshape(-1, 1),
        x_test=rng.integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8),
        y_test=np.array([[3], [8]], dtype=np.uint8),
    )
    blob = buffer.getvalue()
    rel = "cifar10/cifar10_train50k_test1k.npz"
    canonical = data.REGISTRY["cifar10"].file("cifar10/cifar-10-python.tar.gz")
    converted = DataFile(rel, hashlib.sha256(blob).hexdigest(), len(blob))
    data.register(Dataset("cifar10", "toy", "CC0", "x", (converted, canonical)))
    mirror = serve("mirror")
    mirror.put(rel, blob)
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", mirror.url)
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    (x, y), (xt, yt) = data.load_cifar10()
    assert x.shape == (6, 32, 32, 3) and y.tolist() == list(range(6)) and yt.tolist() == [3, 8]
    assert (cache / rel).read_bytes() == blob and mirror.requests == ["/" + rel]


# --------------------------------------------------------------------------
# The downloader


def test_download_needs_no_keras(toy, serve, monkeypatch):
    cache, declare = toy
    origin = serve("origin")
    origin.put("blob.bin", PAYLOAD)
    declare(url=origin.url + "/blob.bin")
    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` now fails
    assert data.fetch("toy").read_bytes() == PAYLOAD
    assert _leftovers(cache) == ["blob.bin"]


def test_download_stops_as_soon_as_more_than_the_declared_size_arrives(toy, serve):
    cache, declare = toy
    origin = serve("origin")
    sent = {"bytes": 0}
    finished = threading.Event()
    total = 64 << 20

    def endless(handler):  # no Content-Length: the body runs until the server closes
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.end_headers()
        block = b"\0" * (64 << 10)
        try:
            while sent["bytes"] < total:
                handler.wfile.write(block)
                sent["bytes"] += len(block)
        except OSError:  # the client hung up
            pass
        finally:
            finished.set()

    origin.routes["/blob.bin"] = endless
    declare(url=origin.url + "/blob.bin")
    with pytest.raises(DatasetError, match="more than the declared") as err:
        data.fetch("toy")
    assert "discarded" in str(err.value)
    assert finished.wait(20)
    assert sent["bytes"] < total // 2  # stopped early, not after reading everything
    assert _leftovers(cache) == []


def _too_long(handler):
    """Announces and sends five bytes more than the registry declares."""
    body = PAYLOAD + b"extra"
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    try:
        handler.wfile.write(body)
    except OSError:
        pass


def _truncated(handler):
    """Announces the declared size, sends half of it and closes the connection."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(PAYLOAD)))
    handler.end_headers()
    handler.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
    handler.close_connection = True


@pytest.mark.parametrize("route, message", [
    (_too_long, f"announced {len(PAYLOAD) + 5:,} bytes"),
    (_truncated, f"only {len(PAYLOAD) // 2:,} of the declared {len(PAYLOAD):,} bytes"),
], ids=["announced-size-differs", "truncated"])
def test_a_download_of_the_wrong_size_is_refused_and_leaves_nothing(toy, serve, route, message):
    cache, declare = toy
    origin = serve("origin")
    origin.routes["/blob.bin"] = route
    declare(url=origin.url + "/blob.bin")
    with pytest.raises(DatasetError, match=message):
        data.fetch("toy")
    assert _leftovers(cache) == []


def test_md5_only_download_is_checked_by_md5(toy, serve):
    cache, declare = toy
    origin = serve("origin")
    origin.put("blob.bin", PAYLOAD)
    declare(url=origin.url + "/blob.bin", sha256="", md5="0" * 32)
    with pytest.raises(DatasetError, match="MD5"):
        data.fetch("toy")
    assert _leftovers(cache) == []
    declare(url=origin.url + "/blob.bin", sha256="", md5=hashlib.md5(PAYLOAD).hexdigest())
    assert data.fetch("toy").read_bytes() == PAYLOAD


def test_progress_is_one_quiet_line(toy, serve, monkeypatch, capsys):
    cache, declare = toy
    origin = serve("origin")
    origin.put("blob.bin", PAYLOAD)
    declare(url=origin.url + "/blob.bin")
    monkeypatch.setattr(data, "_CHUNK", 16 << 10)  # ~19 reads, so every 10% step is crossed
    data.fetch("toy")
    out, err = capsys.readouterr()
    assert err == "", "on a book page standard error is flagged as log spam"
    assert out.count("\n") == 1 and out.endswith("\n") and "\r" not in out  # not a terminal
    assert REL in out and "50%" in out and "100%" in out and "127.0.0.1" in out


def test_progress_on_a_terminal_redraws_one_line():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = data._Progress("toy/blob.bin", 1000, "http://example.org/blob.bin", stream)
    progress.start()
    for _ in range(100):
        progress.update(10)
    progress.finish(True)
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("100%\n") and text.count("\r") <= 12


def test_stale_partial_files_are_swept_before_a_download(toy, serve):
    cache, declare = toy
    origin = serve("origin")
    origin.put("blob.bin", PAYLOAD)
    declare(url=origin.url + "/blob.bin")
    folder = cache / "toy"
    (folder / ".partial-killed-dir").mkdir(parents=True)
    (folder / ".partial-killed-dir" / "blob.bin").write_bytes(b"half")
    (folder / ".partial-killed").write_bytes(b"half")
    (folder / ".partial-running").write_bytes(b"in progress elsewhere")
    two_hours_ago = time.time() - 7200
    for name in (".partial-killed-dir", ".partial-killed"):
        os.utime(folder / name, (two_hours_ago, two_hours_ago))
    data.fetch("toy")
    assert _leftovers(cache) == [".partial-running", "blob.bin"]


def test_downloaded_file_has_the_usual_permissions(toy, serve):
    cache, declare = toy
    origin = serve("origin")
    origin.put("blob.bin", PAYLOAD)
    declare(url=origin.url + "/blob.bin")
    path = data.fetch("toy")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
