"""dlbook.serve's request handling without HTTP: parse_predict, read_body and ServiceRoutes.

These need neither a server nor Starlette: the functions take bytes, decoded
payloads and async iterators of chunks, as the service hands them over.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from dlbook.serve import RequestError, RequestLimits, ServedModel, ServiceRoutes, parse_predict, read_body

GOOD = [[[1, 2, 3], [4, 5, 6]], [[0.5, 0, 0], [0, 0, -1]]]


def toy_model(name: str = "toy") -> ServedModel:
    return ServedModel(name=name, predict=lambda b: b.reshape(len(b), -1).sum(1, keepdims=True),
                       instance_shape=(2, 3), output_shape=(1,), version=3)


def refused(fn, *args) -> RequestError:
    with pytest.raises(RequestError) as caught:
        fn(*args)
    return caught.value


# ---------------------------------------------------------------------------
# parse_predict


def test_parse_predict_row_format_from_a_body():
    key, batch = parse_predict(json.dumps({"instances": GOOD}).encode(), toy_model())
    assert key == "predictions" and batch.dtype == np.float32 and batch.shape == (2, 2, 3)
    np.testing.assert_array_equal(batch, np.asarray(GOOD, "float32"))


def test_parse_predict_columnar_format_from_a_payload():
    for inputs in (GOOD, {"inputs": GOOD}):
        key, batch = parse_predict({"inputs": inputs, "signature_name": "serving_default"}, toy_model())
        assert key == "outputs"
        np.testing.assert_array_equal(batch, np.asarray(GOOD, "float32"))


def test_parse_predict_decodes_a_large_body_in_pieces_to_the_same_batch():
    rng = np.random.default_rng(0)
    instances = rng.normal(size=(1200, 2, 3)).round(6).tolist()
    body = json.dumps({"instances": instances}).encode()
    assert len(body) > 64 * 1024  # above the size decoded in one call
    _, batch = parse_predict(body, toy_model(), RequestLimits(max_instances=1200))
    np.testing.assert_array_equal(batch, np.asarray(instances, "float32"))


@pytest.mark.parametrize(
    "request_, code",
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe\x00", "malformed_json"),
        ([1, 2], "bad_request"),
        ({"instances": GOOD, "inputs": GOOD}, "bad_request"),
        ({}, "bad_request"),
        ({"inputs": {"x": GOOD}}, "bad_request"),
        ({"instances": GOOD, "signature_name": "other"}, "unknown_signature"),
        ({"instances": []}, "empty_batch"),
        ({"instances": [[1, 2, 3]]}, "wrong_shape"),
        ({"instances": [[["a", 2, 3], [4, 5, 6]]]}, "wrong_dtype"),
        ({"instances": [[[1e39, 2, 3], [4, 5, 6]]]}, "non_finite"),
    ],
)
def test_parse_predict_refuses_with_400_and_a_code(request_, code):
    err = refused(parse_predict, request_, toy_model())
    assert (err.status, err.code) == (400, code), err.message


def test_parse_predict_takes_max_instances_from_the_limits():
    payload = {"instances": GOOD}
    assert parse_predict(payload, toy_model(), RequestLimits(max_instances=2))[1].shape[0] == 2
    err = refused(parse_predict, payload, toy_model(), RequestLimits(max_instances=1))
    assert (err.status, err.code) == (400, "too_many_instances")


# ---------------------------------------------------------------------------
# RequestLimits and read_body


def test_request_limits_defaults_and_checks():
    limits = RequestLimits(max_body_bytes=1000)
    assert limits.max_inflight_bytes_per_client == 2000
    assert limits.drain_bytes == 64 * 2**20
    assert RequestLimits(max_body_bytes=32 * 2**20).drain_bytes == 128 * 2**20
    with pytest.raises(ValueError):
        RequestLimits(body_timeout_s=0)
    with pytest.raises(ValueError):
        RequestLimits(max_inflight_per_client=0)


async def chunks_of(*parts: bytes, delay: float = 0.0):
    for part in parts:
        if delay:
            await asyncio.sleep(delay)
        yield part


class Counted:
    """An async iterator of chunks that counts how many were taken."""

    def __init__(self, parts):
        self.parts, self.taken = list(parts), 0

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.taken == len(self.parts):
            raise StopAsyncIteration
        self.taken += 1
        return self.parts[self.taken - 1]


def read(chunks, content_length, limits) -> bytes:
    return asyncio.run(read_body(chunks, content_length, limits))


def test_read_body_joins_the_chunks():
    assert read(chunks_of(b"ab", b"", b"cd"), "4", RequestLimits(max_body_bytes=4)) == b"abcd"
    assert read(chunks_of(), None, RequestLimits()) == b""


def test_read_body_refuses_a_bad_content_length_before_reading():
    chunks = Counted([b"x"])
    err = refused(read, chunks, "12x", RequestLimits())
    assert (err.status, err.code, chunks.taken) == (400, "bad_request", 0)


def test_read_body_drains_a_body_somewhat_over_the_limit_then_answers_413():
    chunks = Counted([b"x" * 600] * 4)
    err = refused(read, chunks, None, RequestLimits(max_body_bytes=1000))
    assert (err.status, err.code) == (413, "body_too_large")
    assert chunks.taken == 4, "the whole body is read, so the client sees the 413"


def test_read_body_answers_413_at_once_beyond_the_drain_limit():
    limits = RequestLimits(max_body_bytes=1000)
    chunks = Counted([b"x"])
    err = refused(read, chunks, str(limits.drain_bytes + 1), limits)
    assert (err.status, chunks.taken) == (413, 0)


def test_read_body_times_out_with_408_and_closes():
    err = refused(read, chunks_of(b"a", b"b", delay=0.2), None, RequestLimits(body_timeout_s=0.05))
    assert (err.status, err.code, err.headers) == (408, "body_timeout", {"Connection": "close"})


# ---------------------------------------------------------------------------
# ServiceRoutes without a running app


def test_routes_find_and_resolve():
    routes = ServiceRoutes([toy_model()], RequestLimits())
    assert routes.resolve("GET", "/v1/models/toy") == (routes.models["toy"], None)
    assert routes.resolve("GET", "/v1/models/toy/versions/3/metadata")[1] == "/metadata"
    assert routes.resolve("POST", "/v1/models/toy:predict")[1] == ":predict"
    for method, path, status, code in [
        ("GET", "/v1/models/other", 404, "unknown_model"),
        ("GET", "/v1/models/toy/versions/2", 404, "unknown_version"),
        ("POST", "/v1/models/toy:classify", 404, "unsupported_method"),
        ("GET", "/v1/models/toy:predict", 405, "method_not_allowed"),
        ("POST", "/v1/models/toy/metadata", 405, "method_not_allowed"),
        ("GET", "/v1/models/toy/a/b", 404, "not_found"),
    ]:
        err = refused(routes.resolve, method, path)
        assert (err.status, err.code) == (status, code), path


def test_routes_admit_counts_requests_and_bytes_per_client():
    routes = ServiceRoutes([toy_model()], RequestLimits(max_body_bytes=100, max_inflight_per_client=3))
    assert routes.admit("a", "") == 100  # no Content-Length: counted as a maximum body
    assert routes.admit("b", "30") == 30
    assert routes.admit("a", "150") == 100  # 200 bytes held: the limit, twice max_body_bytes
    err = refused(routes.admit, "a", "1")  # would pass the byte limit
    assert (err.status, err.code, err.headers) == (429, "too_many_requests", {"Retry-After": "1"})
    routes.release("a", 100)
    assert routes.admit("a", "10") == 10
    assert routes.admit("a", "10") == 10  # three in flight now
    assert refused(routes.admit, "a", "0").status == 429  # the request limit
    for cost in (100, 10, 10):
        routes.release("a", cost)
    routes.release("b", 30)
    assert routes.inflight == {}


def test_routes_need_distinct_names():
    with pytest.raises(ValueError):
        ServiceRoutes([toy_model("a"), toy_model("a")], RequestLimits())
