"""Tests of dlbook.loadtest against a real service on 127.0.0.1 (always stopped)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from dlbook import loadtest  # noqa: E402
from dlbook.serve import ServedModel, make_app, run_in_thread  # noqa: E402


def double(batch: np.ndarray) -> np.ndarray:
    return 2 * batch


@pytest.fixture(scope="module")
def url():
    model = ServedModel("twice", double, instance_shape=(3,), output_shape=(3,))
    with run_in_thread(make_app(model)) as running:
        yield f"{running.url}/v1/models/twice:predict"


BODIES = [json.dumps({"instances": [[i, i + 1, i + 2]]}).encode() for i in range(20)] + [b'{"instances": []}']


def test_run_sends_every_body_once(url):
    result = loadtest.run(url, BODIES, clients=4, timeout=10)
    assert result["statuses"] == [200] * 20 + [400]
    assert len(result["latencies_s"]) == len(BODIES) and min(result["latencies_s"]) > 0
    assert result["wall_s"] >= max(result["latencies_s"])


def test_in_subprocess_gives_the_same_kind_of_result(url):
    result = loadtest.in_subprocess(url, BODIES, clients=3, timeout=10)
    assert result["statuses"] == [200] * 20 + [400] and len(result["latencies_s"]) == len(BODIES)


def test_no_server_is_status_zero_and_bounded():
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = loadtest.run(f"http://127.0.0.1:{port}/v1/models/x:predict", [b"{}"] * 3, clients=2, timeout=5)
    assert result["statuses"] == [0, 0, 0] and result["wall_s"] < 30


def test_bad_arguments():
    with pytest.raises(ValueError):
        loadtest.run("http://127.0.0.1:1/", [b"{}"], clients=0)
    with pytest.raises(ValueError):
        loadtest.in_subprocess("http://127.0.0.1:1/", [b"{\n}"], clients=1)


def test_command_line_help():
    out = subprocess.run([sys.executable, "-m", "dlbook.loadtest", "--help"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert "--clients" in out.stdout
