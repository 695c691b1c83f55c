"""Reliability tests of dlbook.serve with real sockets on 127.0.0.1: slow and idle
clients, connection caps, Nagle's delay, one client stalling the others, non-finite
outputs, batching by instance shape, and the command line's and Content-Type's guards.

Every service runs inside ``run_in_thread``'s ``with`` block (always stopped), with
timeouts of about a second so that the tests stay short; every socket has a timeout
and is closed; every load is a bounded number of requests or a bounded duration.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from dlbook.serve import (  # noqa: E402
    BatchingOptions,
    ServedModel,
    ServerLimits,
    build_parser,
    check_host,
    make_app,
    post_json,
    request_json,
    run_in_thread,
)

TIMEOUT = 10.0
GOOD = [[[1, 2, 3], [4, 5, 6]]]
FAST = ServerLimits(header_timeout_s=1.0, keep_alive_s=1.0, max_connections=8)


def toy_predict(batch: np.ndarray) -> np.ndarray:
    flat = batch.reshape(len(batch), -1)
    return np.stack([flat.sum(axis=1), flat.max(axis=1)], axis=1)


def toy_model(predict=toy_predict, shape=(2, 3)) -> ServedModel:
    return ServedModel(name="toy", predict=predict, instance_shape=shape, output_shape=(2,))


def predict_url(running) -> str:
    return f"{running.url}/v1/models/toy:predict"


def good_request_works(running) -> bool:
    status, body = post_json(predict_url(running), {"instances": GOOD}, timeout=TIMEOUT)
    return status == 200 and body["predictions"] == toy_predict(np.asarray(GOOD, "float32")).tolist()


def read_until_closed(conn: socket.socket, limit_s: float) -> tuple[bytes, float | None]:
    """Read what the server sends until it closes; return (bytes, seconds to the close or None)."""
    start, data = time.monotonic(), b""
    conn.settimeout(0.2)
    while time.monotonic() - start < limit_s:
        try:
            chunk = conn.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, time.monotonic() - start
        if not chunk:
            return data, time.monotonic() - start
        data += chunk
    return data, None


# ---------------------------------------------------------------------------
# 1. Slow and idle clients are disconnected; connections are capped

HEAD = b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
SLOW_STARTS = {
    "nothing_at_all": [],
    "half_a_request_line": [b"POST /v1/mod"],
    "half_the_headers": [b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Ty"],
    "headers_a_byte_at_a_time": [bytes([b]) for b in HEAD],  # one byte every 0.1 s: never idle
}


@pytest.mark.parametrize("case", sorted(SLOW_STARTS))
def test_a_client_that_never_finishes_its_request_head_is_disconnected(case):
    with run_in_thread(make_app(toy_model()), limits=FAST) as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT) as conn:
            start = time.monotonic()
            for piece in SLOW_STARTS[case]:
                try:
                    conn.sendall(piece)
                except OSError:  # already closed by the server: what we want
                    break
                time.sleep(0.1)
                if time.monotonic() - start > 5:
                    break
            reply, closed_after = read_until_closed(conn, 8.0)
            closed_after = None if closed_after is None else time.monotonic() - start
        assert closed_after is not None and closed_after < 4.0, f"still open after {time.monotonic() - start:.1f} s"
        assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply[:100]
        assert good_request_works(running)


def test_a_body_that_trickles_in_gets_408_and_the_connection_is_closed():
    with run_in_thread(make_app(toy_model(), body_timeout_s=1.0), limits=FAST) as running:
        body = json.dumps({"instances": GOOD}).encode()
        with socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT) as conn:
            start = time.monotonic()
            conn.sendall(HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode())
            for byte in body[:20]:  # a byte every 0.25 s: each read arrives "in time"
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.25)
            reply, closed_after = read_until_closed(conn, 8.0)
        elapsed = time.monotonic() - start
        assert closed_after is not None and elapsed < 8.0
        assert reply.startswith(b"HTTP/1.1 408") and b'"body_timeout"' in reply, reply[:300]
        assert good_request_works(running)


def test_an_idle_keep_alive_connection_is_closed():
    with run_in_thread(make_app(toy_model()), limits=FAST) as running:
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=TIMEOUT)
        try:
            conn.request("GET", "/healthz")
            assert conn.getresponse().read() and conn.sock is not None
            _, closed_after = read_until_closed(conn.sock, 6.0)
        finally:
            conn.close()
        assert closed_after is not None and closed_after < 4.0


def test_requests_beyond_the_connection_cap_get_503():
    limits = ServerLimits(header_timeout_s=5.0, keep_alive_s=5.0, max_connections=4)
    with run_in_thread(make_app(toy_model()), limits=limits) as running:
        idle = [socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT) for _ in range(3)]
        try:
            time.sleep(0.2)
            assert good_request_works(running)  # 3 idle + this one: within the cap
            idle.append(socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT))
            time.sleep(0.2)
            status, _ = request_json(f"{running.url}/healthz", timeout=TIMEOUT)
            assert status == 503  # 4 idle + this one: over it
        finally:
            for conn in idle:
                conn.close()
        deadline = time.monotonic() + 5
        while len(running.server.server_state.connections) > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert good_request_works(running)


def test_a_flood_of_idle_sockets_is_bounded_and_cleared():
    """200 sockets that send nothing: the server holds at most twice its cap, closes the
    rest at once, and all of them within the header timeout; then it serves again."""
    with run_in_thread(make_app(toy_model()), limits=FAST) as running:
        flood = []
        try:
            for _ in range(200):
                flood.append(socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT))
            time.sleep(0.3)
            held = len(running.server.server_state.connections)
            assert held <= 2 * FAST.max_connections, held
            deadline = time.monotonic() + 5
            while len(running.server.server_state.connections) > 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(running.server.server_state.connections) == 0
        finally:
            for conn in flood:
                conn.close()
        assert good_request_works(running)


# ---------------------------------------------------------------------------
# 2. Nagle's algorithm off on accepted sockets


def test_accepted_sockets_have_tcp_nodelay():
    with run_in_thread(make_app(toy_model())) as running:
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=TIMEOUT)
        try:
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            (protocol,) = running.server.server_state.connections
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            conn.close()


def test_keep_alive_requests_are_not_delayed():
    """20 sequential requests on one kept-open connection: no 40 ms delayed-ACK stalls."""
    with run_in_thread(make_app(toy_model())) as running:
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=TIMEOUT)
        body = json.dumps({"instances": GOOD}).encode()
        times = []
        try:
            for _ in range(21):
                start = time.perf_counter()
                conn.request("POST", "/v1/models/toy:predict", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                assert response.status == 200
                response.read()
                times.append(time.perf_counter() - start)
        finally:
            conn.close()
    median_ms = 1000 * statistics.median(times[1:])
    print(f"keep-alive median {median_ms:.2f} ms")
    assert median_ms < 20, f"median {median_ms:.1f} ms on a kept-open connection"


# ---------------------------------------------------------------------------
# 3. One heavy client does not stall the others


def test_a_client_sending_maximum_batches_does_not_stall_the_status_endpoint():
    image_model = ServedModel("toy", lambda b: b.reshape(len(b), -1)[:, :10], instance_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    heavy = json.dumps({"instances": rng.integers(0, 256, size=(256, 32, 32, 3)).tolist()}).encode()
    stop = threading.Event()
    sent = []

    def blast(url):
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=TIMEOUT)
        try:
            while not stop.is_set():
                conn.request("POST", "/v1/models/toy:predict", body=heavy, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                sent.append(response.status)
        finally:
            conn.close()

    with run_in_thread(make_app(image_model)) as running:
        with ThreadPoolExecutor(max_workers=2) as pool:
            blasters = [pool.submit(blast, running.url) for _ in range(2)]
            try:
                time.sleep(0.5)
                status_conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=TIMEOUT)
                times = []
                for _ in range(25):
                    start = time.perf_counter()
                    status_conn.request("GET", "/v1/models/toy")
                    response = status_conn.getresponse()
                    response.read()
                    times.append(time.perf_counter() - start)
                    assert response.status == 200
                    time.sleep(0.02)
                status_conn.close()
            finally:
                stop.set()
            for blaster in blasters:
                blaster.result(timeout=60)
    assert sent and set(sent) == {200}, set(sent)
    median_ms = 1000 * statistics.median(times)
    print(f"status median {median_ms:.1f} ms, max {1000 * max(times):.0f} ms, {len(sent)} heavy requests")
    assert median_ms < 40, f"status median {median_ms:.0f} ms while one client sends maximum batches"


def test_one_client_can_hold_only_a_bounded_number_of_requests():
    release = threading.Event()

    def stuck(batch):
        release.wait(TIMEOUT)
        return toy_predict(batch)

    app = make_app(toy_model(predict=stuck), max_inflight_per_client=2, model_threads=4)
    with run_in_thread(app) as running:
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(post_json, predict_url(running), {"instances": GOOD}, TIMEOUT) for _ in range(4)]
            time.sleep(0.5)
            release.set()
            answers = [f.result(timeout=30) for f in futures]
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 200, 429, 429], answers
    assert {body["code"] for status, body in answers if status == 429} == {"too_many_requests"}


def test_one_client_can_hold_only_a_bounded_number_of_body_bytes():
    release = threading.Event()

    def stuck(batch):
        release.wait(TIMEOUT)
        return toy_predict(batch)

    app = make_app(toy_model(predict=stuck), max_body_bytes=4096, max_inflight_bytes_per_client=5000, model_threads=4)
    padded = {"instances": GOOD, "pad": "x" * 2000}  # about 2,050 bytes: two fit in 5,000, three do not
    with run_in_thread(app) as running:
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = [pool.submit(post_json, predict_url(running), padded, TIMEOUT) for _ in range(3)]
            time.sleep(0.5)
            release.set()
            answers = [f.result(timeout=30) for f in futures]
        assert sorted(status for status, _ in answers) == [200, 200, 429], answers
        assert good_request_works(running)  # the bytes were given back


# ---------------------------------------------------------------------------
# 4. Non-finite outputs and server errors


def test_an_output_beyond_float32_is_a_clear_422_not_a_500(caplog):
    def overflowing(batch):
        with np.errstate(over="ignore"):
            return batch.reshape(len(batch), -1) * np.float32(1e38)

    with run_in_thread(make_app(toy_model(predict=overflowing))) as running:
        status, body = post_json(predict_url(running), {"instances": [[[1, 2, 3], [4, 5, 6]]]}, timeout=TIMEOUT)
        assert (status, body["code"]) == (422, "non_finite_output"), body
        status, body = post_json(predict_url(running), {"instances": [[[0, 0, 0], [0, 0, 0]]]}, timeout=TIMEOUT)
        assert status == 200 and body["predictions"] == [[0.0] * 6]


def test_every_5xx_is_logged_with_its_traceback(caplog):
    def broken(batch):
        raise ZeroDivisionError("the model broke")

    caplog.set_level(logging.ERROR, logger="dlbook.serve")
    with run_in_thread(make_app(toy_model(predict=broken))) as running:
        status, body = post_json(predict_url(running), {"instances": GOOD}, timeout=TIMEOUT)
    assert status == 500 and body["code"] == "internal"
    records = [r for r in caplog.records if r.name == "dlbook.serve" and r.levelno >= logging.ERROR]
    assert records and records[0].exc_info and records[0].exc_info[0] is ZeroDivisionError
    assert "500" in records[0].getMessage() and "toy" in records[0].getMessage()


# ---------------------------------------------------------------------------
# 5. Batching: one shape per batch, never more than max_batch_size


def test_batching_keeps_instances_of_different_shapes_apart():
    calls = []

    def free(batch):
        calls.append(batch.shape)
        time.sleep(0.05)
        return batch.sum(axis=2)  # (n, length)

    model = ServedModel("toy", free, instance_shape=(None, 3))
    options = BatchingOptions(max_batch_size=32, batch_timeout_s=0.05)
    requests = [np.ones((1, length, 3)).tolist() for length in (2, 4, 2, 4, 5)]
    with run_in_thread(make_app(model, batching=options)) as running:
        with ThreadPoolExecutor(max_workers=5) as pool:
            answers = list(pool.map(
                lambda inst: post_json(predict_url(running), {"instances": inst}, TIMEOUT), requests))
    for inst, (status, body) in zip(requests, answers):
        assert status == 200, body
        assert body["predictions"] == np.asarray(inst).sum(axis=2).tolist()
    assert all(len({shape[1:]}) == 1 for shape in calls) and sum(s[0] for s in calls) == 5


def test_batching_never_exceeds_max_batch_size():
    calls = []

    def record(batch):
        calls.append(len(batch))
        time.sleep(0.02)
        return toy_predict(batch)

    options = BatchingOptions(max_batch_size=32, batch_timeout_s=0.05)
    app = make_app(toy_model(predict=record), batching=options, max_instances=256)
    sizes = (3, 200, 31, 2)
    rng = np.random.default_rng(1)
    requests = [rng.integers(0, 9, size=(n, 2, 3)).tolist() for n in sizes]
    with run_in_thread(app) as running:
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(
                lambda inst: post_json(predict_url(running), {"instances": inst}, TIMEOUT), requests))
    for inst, (status, body) in zip(requests, answers):
        assert status == 200, body
        np.testing.assert_array_equal(np.asarray(body["predictions"]), toy_predict(np.asarray(inst, "float32")))
    assert max(calls) <= 32 and sum(calls) == sum(sizes), calls


# ---------------------------------------------------------------------------
# 6. The command line's bind address, and Content-Type


def test_command_line_refuses_a_remote_address_unless_allowed(caplog):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["export/m", "--name", "m", "--host", "0.0.0.0"])
    args = build_parser().parse_args(["export/m", "--name", "m", "--host", "0.0.0.0", "--allow-remote"])
    assert args.allow_remote
    caplog.set_level(logging.WARNING, logger="dlbook.serve")
    check_host("0.0.0.0", allow_remote=True)
    assert any("0.0.0.0" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    check_host("127.0.0.1", allow_remote=False)
    with pytest.raises(ValueError, match="loopback"):
        check_host("192.0.2.1", allow_remote=False)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonp"])
def test_predict_requires_a_json_content_type(content_type):
    with run_in_thread(make_app(toy_model())) as running:
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=TIMEOUT)
        try:
            conn.putrequest("POST", "/v1/models/toy:predict")
            body = json.dumps({"instances": GOOD}).encode()
            if content_type is not None:
                conn.putheader("Content-Type", content_type)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            answer = json.loads(response.read())
        finally:
            conn.close()
        assert response.status == 415 and answer["code"] == "unsupported_media_type", answer
        assert good_request_works(running)


def test_json_with_a_charset_is_accepted():
    with run_in_thread(make_app(toy_model())) as running:
        status, body = request_json(predict_url(running), {"instances": GOOD},
                                    headers={"Content-Type": "application/json; charset=utf-8"}, timeout=TIMEOUT)
        assert status == 200, body
