"""Tests of dlbook.loadtest against a real service on 127.0.0.1 (always stopped)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from dlbook import loadtest  # noqa: E402
from dlbook.serve import ServedModel, ServerLimits, make_app, run_in_thread  # noqa: E402


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
    with pytest.raises(ValueError):
        loadtest.run("http://127.0.0.1:1/", [], clients=1)
    with pytest.raises(ValueError):
        loadtest.Client("https://127.0.0.1:1/", timeout=1)


def test_command_line_help():
    out = subprocess.run([sys.executable, "-m", "dlbook.loadtest", "--help"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert "--clients" in out.stdout


@pytest.fixture(scope="module")
def counted():
    """A service that notes the client port of every request: one port per TCP connection."""
    model = ServedModel("twice", double, instance_shape=(3,), output_shape=(3,))
    app, ports = make_app(model), []

    async def noting(scope, receive, send):
        if scope["type"] == "http":
            ports.append(scope["client"][1])
        await app(scope, receive, send)

    with run_in_thread(noting) as running:
        yield f"{running.url}/v1/models/twice:predict", ports


def test_keep_alive_clients_reuse_their_connections(counted):
    url, ports = counted
    ports.clear()
    result = loadtest.run(url, BODIES[:20], clients=3, timeout=10, requests=60)
    assert result["statuses"] == [200] * 60
    assert result["connections"] == 3 and len(set(ports)) == 3 and len(ports) == 60


def test_without_keep_alive_every_request_opens_a_connection(counted):
    url, ports = counted
    ports.clear()
    result = loadtest.run(url, BODIES[:20], clients=2, timeout=10, keep_alive=False)
    assert result["statuses"] == [200] * 20 and result["connections"] == 20 and len(set(ports)) == 20


def test_requests_cycle_through_the_bodies_with_start_times(url):
    result = loadtest.run(url, BODIES[:3], clients=2, timeout=10, requests=10)
    assert result["statuses"] == [200] * 10 and len(result["starts_s"]) == 10
    assert all(0 <= s <= result["wall_s"] for s in result["starts_s"])
    assert all(s + lat <= result["wall_s"] + 1e-6 for s, lat in zip(result["starts_s"], result["latencies_s"]))
    if result["load_average"] is not None:
        assert len(result["load_average"]) == 3


def test_a_connection_the_server_closed_while_idle_is_reopened_once():
    model = ServedModel("twice", double, instance_shape=(3,), output_shape=(3,))
    limits = ServerLimits(header_timeout_s=2.0, keep_alive_s=0.3)
    with run_in_thread(make_app(model), limits=limits) as running:
        client = loadtest.Client(f"{running.url}/v1/models/twice:predict", timeout=10)
        try:
            assert client.post(BODIES[0]) == 200
            time.sleep(1.0)  # the server closes the idle connection after 0.3 s
            assert client.post(BODIES[1]) == 200
            assert client.opened == 2
        finally:
            client.close()


def test_in_subprocess_passes_requests_and_keep_alive(url):
    result = loadtest.in_subprocess(url, BODIES[:4], clients=2, timeout=10, requests=12)
    assert result["statuses"] == [200] * 12 and result["connections"] == 2
