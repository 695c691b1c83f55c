"""A small prediction service that answers in TensorFlow Serving's REST shape.

Chapter 11 serves its exported CIFAR-10 model with this module. The service
speaks the subset of the TensorFlow Serving REST API that clients use, so the
same client code works against ``tensorflow_model_server`` in production::

    POST /v1/models/<name>[/versions/<v>]:predict   {"instances": [...]} -> {"predictions": [...]}
                                                    {"inputs": [...]}    -> {"outputs": [...]}
    GET  /v1/models/<name>[/versions/<v>]           model status (TF Serving's health check)
    GET  /v1/models/<name>[/versions/<v>]/metadata  signature: input/output dtype and shape
    GET  /healthz                                   liveness: {"status": "ok", "models": [...]}
    GET  /statsz                                    what the service has done (:class:`ServiceStats`)

Every refused request gets an answer with a JSON body ``{"error": message,
"code": short_code}`` (TF Serving's ``{"error": ...}`` plus a code a program
can test), and the service keeps answering the next request:

    400  malformed_json, bad_request, wrong_shape, wrong_dtype, non_finite, empty_batch,
         too_many_instances, unknown_signature
    404  unknown_model, unknown_version, unsupported_method, not_found
    405  method_not_allowed
    408  header_timeout, body_timeout (and the connection is closed)
    413  body_too_large
    415  unsupported_media_type (a predict body must be sent as application/json)
    422  non_finite_output (the model computed NaN or infinity: JSON has no number for it)
    429  too_many_requests (one client address has too many requests in flight)
    500  internal (the model failed; logged with its traceback on the "dlbook.serve" logger)
    503  shutting_down; and uvicorn's plain-text 503 beyond ``ServerLimits.max_connections``

A predict request goes through parts that also work alone: :func:`parse_predict`
checks a body or a decoded payload against a :class:`ServedModel` (no HTTP
involved), :func:`read_body` reads a body within :class:`RequestLimits`, and a
:class:`ServiceRoutes` holds the models, their :class:`ServiceStats` and the
requests in flight; :func:`make_app` wires these into a Starlette application.

Slow and idle clients are disconnected (:class:`ServerLimits`): a request's
line and headers must arrive within ``header_timeout_s`` of the connection (or
of its first byte, on a kept-open connection), its body within
``body_timeout_s``, and an idle kept-open connection is closed after
``keep_alive_s``. Parsing, validation and serialisation run in worker threads,
not on the event loop, so one client's large requests do not stall the others.

Optionally, concurrent requests are batched on the server (TF Serving's
``--enable_batching``): requests that arrive within ``batch_timeout_s`` of the
first, up to ``max_batch_size`` instances, run through the model as one batch;
only instances of one shape share a batch, and a larger request is split.

The web framework is Starlette on the uvicorn ASGI server: both small, pure
Python, widely used and actively maintained (FastAPI is built on the same
pair). They are imported lazily, so ``import dlbook`` never needs them;
TensorFlow is imported only by :meth:`ServedModel.from_saved_model`.

Typical use, in a notebook or a test (always on loopback, always stopped)::

    model = ServedModel.from_saved_model("export/cifar10", name="cifar10")
    with run_in_thread(make_app(model)) as service:
        status, body = post_json(service.url + "/v1/models/cifar10:predict",
                                 {"instances": images.tolist()})

From a shell: ``python -m dlbook.serve export/cifar10 --name cifar10 --port 8501``
(loopback only unless ``--allow-remote``); from Python, in its own process:
:func:`run_in_process`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterable, Callable, Iterator, Mapping, Sequence

import numpy as np

DEFAULT_MAX_BODY_BYTES = 8 * 2**20
"""Largest request body accepted (8 MiB, about 500 CIFAR-10 images as JSON)."""

DEFAULT_MAX_INSTANCES = 256
"""Most instances accepted in one request."""

DEFAULT_BODY_TIMEOUT_S = 10.0
"""A request's body must arrive within this many seconds of its headers (408 otherwise)."""

DEFAULT_MAX_INFLIGHT_PER_CLIENT = 16
"""Most predict requests one client address may have in flight at once (429 beyond)."""

logger = logging.getLogger("dlbook.serve")  # also when run as __main__
"""Where the service reports every 5xx answer, with its traceback ("dlbook.serve")."""

_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<action>:[a-z]+|/metadata)?$"
)


class RequestError(Exception):
    """A refused request, answered with ``status``, ``{"error": message, "code": code}`` and ``headers``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class ServedModel:
    """A model the service can answer for.

    Attributes:
        name: the name in the URL (``/v1/models/<name>:predict``).
        predict: maps a batch ``(n, *instance_shape)`` of ``dtype`` to outputs ``(n, ...)``.
        instance_shape: the shape of one instance; ``None`` for a free dimension.
        dtype: the input dtype; JSON numbers are cast to it.
        version: the version number reported and accepted in versioned URLs.
        output_shape: the shape of one output, for the metadata (None if unknown).
        input_name: the input's name in the metadata and in ``{"inputs": {name: ...}}``.
        output_name: the output's name in the metadata.
    """

    name: str
    predict: Callable[[np.ndarray], Any]
    instance_shape: tuple[int | None, ...]
    dtype: str = "float32"
    version: int = 1
    output_shape: tuple[int | None, ...] | None = None
    input_name: str = "inputs"
    output_name: str = "outputs"

    @classmethod
    def from_saved_model(cls, path: str, name: str, version: int = 1) -> "ServedModel":
        """Load a TensorFlow SavedModel (as written by ``keras.Model.export``).

        Uses its ``serving_default`` signature, the one TF Serving uses; only
        TensorFlow is needed, not the model's Python code.
        """
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        fn = loaded.signatures["serving_default"]
        _, kwargs = fn.structured_input_signature
        if len(kwargs) != 1:
            raise ValueError(f"only single-input models are served; {path} has {sorted(kwargs)}")
        (input_name, spec), = kwargs.items()
        outputs = fn.structured_outputs
        if len(outputs) != 1:
            raise ValueError(f"only single-output models are served; {path} has {sorted(outputs)}")
        (output_name, out_spec), = outputs.items()

        def predict(batch: np.ndarray) -> np.ndarray:
            return fn(**{input_name: tf.constant(batch)})[output_name].numpy()

        served = cls(
            name=name,
            predict=predict,
            instance_shape=tuple(spec.shape[1:]),
            dtype=spec.dtype.name,
            version=version,
            output_shape=tuple(out_spec.shape[1:]),
            input_name=input_name,
            output_name=output_name,
        )
        served._keepalive = loaded  # the signature needs the loaded object alive
        return served

    def validate(self, value: Any, max_instances: int = DEFAULT_MAX_INSTANCES) -> np.ndarray:
        """Turn a JSON list of instances into a batch array, or raise :class:`RequestError`.

        Checks, in order: a list, not empty, not too many, rectangular (one
        shape for all instances), numbers only, the instance shape, and finite
        values once cast to ``dtype``.
        """
        if not isinstance(value, list):
            raise RequestError(400, "wrong_shape", f"instances must be a JSON list, got {type(value).__name__}")
        if len(value) == 0:
            raise RequestError(400, "empty_batch", "instances is empty: send at least one instance")
        if len(value) > max_instances:
            raise RequestError(
                400, "too_many_instances", f"{len(value)} instances in one request; at most {max_instances}"
            )
        try:
            array = _as_array(value)
        except (ValueError, TypeError):  # NumPy 2: ragged nesting is an error
            raise RequestError(
                400, "wrong_shape", "instances are ragged: every instance must have the same nested list shape"
            ) from None
        if array.dtype == object:
            kinds = _leaf_types(_plain(value))
            if kinds - {"int", "float"}:
                raise RequestError(
                    400, "wrong_dtype", f"instances must hold numbers only; found {', '.join(sorted(kinds))}"
                )
            raise RequestError(400, "wrong_dtype", "instances hold integers too large for any numeric type")
        if array.dtype.kind not in "iuf":
            what = {"b": "booleans", "U": "strings", "S": "bytes"}.get(array.dtype.kind, str(array.dtype))
            raise RequestError(400, "wrong_dtype", f"instances must hold numbers, not {what}")
        expected = self.instance_shape
        got = array.shape[1:]
        if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
            raise RequestError(
                400, "wrong_shape", f"each instance must have shape {_shape_text(expected)}; got {_shape_text(got)}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            batch = array.astype(self.dtype)
        if batch.dtype.kind == "f" and not np.all(np.isfinite(batch)):
            raise RequestError(
                400, "non_finite", f"instances hold NaN or infinite values (or numbers outside {self.dtype})"
            )
        return batch

    def metadata(self) -> dict[str, Any]:
        """The body of ``GET /v1/models/<name>/metadata``, in TF Serving's layout."""

        def tensor(shape: Sequence[int | None] | None) -> dict[str, Any]:
            if shape is None:
                return {"dtype": _tf_dtype(self.dtype), "tensor_shape": {"unknown_rank": True}}
            dims = [{"size": "-1", "name": ""}] + [
                {"size": str(-1 if d is None else d), "name": ""} for d in shape
            ]
            return {"dtype": _tf_dtype(self.dtype), "tensor_shape": {"dim": dims, "unknown_rank": False}}

        signature = {
            "inputs": {self.input_name: {**tensor(self.instance_shape), "name": self.input_name}},
            "outputs": {self.output_name: {**tensor(self.output_shape), "name": self.output_name}},
            "method_name": "tensorflow/serving/predict",
        }
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": str(self.version)},
            "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}},
        }


def _instance_array(item: Any) -> Any:
    """One decoded instance as an array if it is a rectangular list of numbers; else unchanged."""
    if isinstance(item, list):
        try:
            array = np.asarray(item)
        except (ValueError, TypeError):  # ragged: validate() says so
            return item
        if array.dtype.kind in "iuf":
            return array
    return item


def _plain(value: list) -> list:
    return [item.tolist() if isinstance(item, np.ndarray) else item for item in value]


def _as_array(value: list) -> np.ndarray:
    """``np.asarray(value)``, one instance at a time where that gives the same array.

    Each conversion is one call that holds Python's global interpreter lock
    throughout; many short calls let the event loop's thread run between them
    (one call on 256 CIFAR-10 images holds the lock for a quarter of a second
    on a slow machine). Instances may already be arrays (:func:`_loads_in_pieces`
    converts them as it goes); mixed kinds, ragged or odd instances take the one call.
    """
    if len(value) > 1 or (value and isinstance(value[0], np.ndarray)):
        try:
            parts = [item if isinstance(item, np.ndarray) else np.asarray(item) for item in value]
        except (ValueError, TypeError):
            parts = []
        if parts and all(p.shape == parts[0].shape and p.dtype.kind in "iuf" for p in parts):
            return np.stack(parts)
    return np.asarray(_plain(value))


def _let_others_run() -> None:
    """Release the interpreter lock for a moment, so that a thread waiting for it (the
    event loop's) runs now, not after Python's 5 ms switch interval; worker threads call
    this between pieces of long work."""
    time.sleep(0)


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_WHOLE_BELOW = 64 * 1024  # bodies smaller than this are decoded in one call


def _loads_in_pieces(body: bytes) -> Any:
    """``json.loads(body)``, decoded in many short calls rather than one long one.

    ``json.loads`` holds the interpreter lock for the whole body (half a second
    for 4 MB on a slow machine), so a worker thread that parses stalls the event
    loop's thread all the same. Here the top-level object, the objects in it
    (two levels deep) and the lists in those are walked in Python, and each
    list element is decoded by the json module on its own: one call per
    instance in ``{"instances": [instance, ...]}`` and
    ``{"inputs": {"name": [instance, ...]}}``. Each such element that is a
    rectangular list of numbers becomes a NumPy array at once, so that the
    hundreds of thousands of small lists of a large body never pile up for the
    garbage collector (whose full passes would hold the lock too). Otherwise the
    same results and the same :class:`json.JSONDecodeError` as ``json.loads``.
    """
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    if len(text) < _WHOLE_BELOW:
        return json.loads(text)
    start = _SPACE.match(text, 0).end()
    value, end = _decode_value(text, start, depth=0)
    end = _SPACE.match(text, end).end()
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _decode_value(text: str, idx: int, depth: int) -> tuple[Any, int]:
    opening = text[idx : idx + 1]
    if depth > 2 or opening not in ("{", "["):
        return _DECODER.raw_decode(text, idx)
    closing = "}" if opening == "{" else "]"
    result: Any = {} if opening == "{" else []
    idx = _SPACE.match(text, idx + 1).end()
    if text[idx : idx + 1] == closing:
        return result, idx + 1
    while True:
        if opening == "{":
            if text[idx : idx + 1] != '"':
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, idx)
            key, idx = json.decoder.scanstring(text, idx + 1)
            idx = _SPACE.match(text, idx).end()
            if text[idx : idx + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, idx)
            idx = _SPACE.match(text, idx + 1).end()
            result[key], idx = _decode_value(text, idx, depth + 1)
        else:  # a list's elements (the instances) are decoded whole, each in one call
            item, idx = _DECODER.raw_decode(text, idx)
            result.append(_instance_array(item))
            _let_others_run()
        idx = _SPACE.match(text, idx).end()
        char = text[idx : idx + 1]
        if char == closing:
            return result, idx + 1
        if char != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, idx)
        idx = _SPACE.match(text, idx + 1).end()


def _leaf_types(value: Any) -> set[str]:
    if isinstance(value, list):
        out: set[str] = set()
        for item in value:
            out |= _leaf_types(item)
        return out
    if isinstance(value, bool):
        return {"bool"}
    return {type(value).__name__ if value is not None else "null"}


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _tf_dtype(dtype: str) -> str:
    return {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF", "int32": "DT_INT32",
            "int64": "DT_INT64", "uint8": "DT_UINT8", "bfloat16": "DT_BFLOAT16"}.get(dtype, dtype)


@dataclass
class BatchingOptions:
    """Server-side batching, named after TF Serving's batching parameters.

    Attributes:
        max_batch_size: the most instances in one model call; a request with
            more is split into several calls, and its answer joined again.
        batch_timeout_s: how long the first request of a batch waits for others.
        num_batch_threads: how many batches may run through the model at once.

    Only instances of one shape share a batch (a model with a free dimension
    gets one batch per shape).
    """

    max_batch_size: int = 32
    batch_timeout_s: float = 0.002
    num_batch_threads: int = 1

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.batch_timeout_s < 0 or self.num_batch_threads < 1:
            raise ValueError(f"invalid batching options {self}")


@dataclass
class ServiceStats:
    """What a running service has done, per app (``app.state.stats``, ``GET /statsz``): a minimal monitor.

    Attributes:
        predictions: answered predict requests (status 200).
        errors: predict requests answered with a 4xx or 5xx status.
        model_calls: calls of a model's ``predict`` (fewer than requests when batching).
        instances: instances that went through the models.
        model_seconds: time spent inside the models' ``predict``, summed over calls.
    """

    predictions: int = 0
    errors: int = 0
    model_calls: int = 0
    instances: int = 0
    model_seconds: float = 0.0

    def model_call(self, instances: int, seconds: float) -> None:
        self.model_calls += 1
        self.instances += instances
        self.model_seconds += seconds


def _run_timed(predict: Callable[[np.ndarray], Any], batch: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()  # timed in the worker thread: waiting in the queue is not model time
    outputs = np.asarray(predict(batch))
    seconds = time.perf_counter() - start
    if outputs.ndim == 0 or len(outputs) != len(batch):
        raise ValueError(f"the model returned {outputs.shape} for a batch of {len(batch)} instances")
    return outputs, seconds


async def _timed_call(executor, predict: Callable[[np.ndarray], Any], batch: np.ndarray, stats: ServiceStats):
    outputs, seconds = await asyncio.get_running_loop().run_in_executor(executor, _run_timed, predict, batch)
    stats.model_call(len(batch), seconds)
    return outputs


@dataclass
class _Queued:
    batch: np.ndarray
    future: asyncio.Future
    arrived: float


class _Batcher:
    """Collects concurrent requests of one model into batches (runs on the event loop).

    A batch holds instances of one shape only, and at most ``max_batch_size``
    of them: :meth:`submit` splits a larger request into pieces, and the
    collector takes, in arrival order, the queued pieces of the first piece's
    shape that still fit. Pieces of other shapes wait for the next batch.
    """

    SIZES_KEPT = 10_000

    def __init__(self, predict: Callable[[np.ndarray], Any], options: BatchingOptions,
                 stats: ServiceStats | None = None) -> None:
        self.predict = predict
        self.options = options
        self.stats = stats if stats is not None else ServiceStats()
        self.pending: deque[_Queued] = deque()
        self.arrived: asyncio.Event | None = None
        self.executor = ThreadPoolExecutor(max_workers=options.num_batch_threads, thread_name_prefix="batch")
        self.running: set[asyncio.Future] = set()
        self.sizes: list[int] = []  # instances per model call (the latest SIZES_KEPT), for the curious
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.arrived = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
        while self.pending:
            item = self.pending.popleft()
            if not item.future.done():
                item.future.set_exception(RequestError(503, "shutting_down", "the service is shutting down"))
        self.executor.shutdown(wait=False)

    async def submit(self, batch: np.ndarray) -> np.ndarray:
        """Queue ``batch`` (split into pieces of at most ``max_batch_size``); its outputs, in order."""
        loop = asyncio.get_running_loop()
        step = self.options.max_batch_size
        futures = []
        for start in range(0, len(batch), step):
            futures.append(loop.create_future())
            self.pending.append(_Queued(batch[start : start + step], futures[-1], loop.time()))
        self.arrived.set()
        try:
            parts = await asyncio.gather(*futures)
        finally:
            for future in futures:  # one piece failed, or the request was cancelled: drop the rest
                future.cancel()
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _choose(self, shape: tuple[int, ...]) -> tuple[list[_Queued], int]:
        chosen, size = [], 0
        for item in self.pending:
            if item.batch.shape[1:] == shape and size + len(item.batch) <= self.options.max_batch_size:
                chosen.append(item)
                size += len(item.batch)
        return chosen, size

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(self.options.num_batch_threads)
        while True:
            while not self.pending:
                self.arrived.clear()
                await self.arrived.wait()
            await limit.acquire()  # a model thread is free: now form the batch
            try:
                self.pending = deque(item for item in self.pending if not item.future.done())
                if not self.pending:
                    limit.release()
                    continue
                first = self.pending[0]
                shape = first.batch.shape[1:]
                deadline = first.arrived + self.options.batch_timeout_s
                while True:
                    chosen, size = self._choose(shape)
                    remaining = deadline - loop.time()
                    if size >= self.options.max_batch_size or remaining <= 0:
                        break
                    self.arrived.clear()
                    try:
                        await asyncio.wait_for(self.arrived.wait(), remaining)
                    except asyncio.TimeoutError:
                        chosen, size = self._choose(shape)
                        break
                taken = {id(item) for item in chosen}
                self.pending = deque(item for item in self.pending if id(item) not in taken)
            except BaseException:
                limit.release()
                raise
            run = loop.create_task(self._run(chosen, limit))
            self.running.add(run)
            run.add_done_callback(self.running.discard)

    async def _run(self, items: list[_Queued], limit: asyncio.Semaphore) -> None:
        try:
            batch = items[0].batch if len(items) == 1 else np.concatenate([item.batch for item in items])
            self.sizes.append(len(batch))
            if len(self.sizes) > 2 * self.SIZES_KEPT:
                del self.sizes[: -self.SIZES_KEPT]
            outputs = await _timed_call(self.executor, self.predict, batch, self.stats)
            start = 0
            for item in items:
                if not item.future.done():
                    item.future.set_result(outputs[start : start + len(item.batch)])
                start += len(item.batch)
        except Exception as err:  # the model failed: every waiting request learns why
            for item in items:
                if not item.future.done():
                    item.future.set_exception(err)
        finally:
            limit.release()


def _is_json_media_type(content_type: str | None) -> bool:
    """True for ``application/json``, with or without parameters (``; charset=utf-8``)."""
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == "application/json"


@dataclass(frozen=True)
class RequestLimits:
    """What one predict request, and one client address, may take from the service.

    Attributes:
        max_body_bytes: larger bodies are answered with 413.
        max_instances: more instances in one request are refused with 400.
        body_timeout_s: a body not complete this many seconds after the headers is
            answered with 408 (and the connection closed).
        max_inflight_per_client: predict requests beyond this many in flight from
            one client address are answered with 429 at once.
        max_inflight_bytes_per_client: so are requests that would take the request
            bodies in flight from one address past this many bytes; None: twice
            ``max_body_bytes``.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_instances: int = DEFAULT_MAX_INSTANCES
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_inflight_per_client: int = DEFAULT_MAX_INFLIGHT_PER_CLIENT
    max_inflight_bytes_per_client: int | None = None

    def __post_init__(self) -> None:
        if self.max_inflight_bytes_per_client is None:
            object.__setattr__(self, "max_inflight_bytes_per_client", 2 * self.max_body_bytes)
        if self.max_inflight_per_client < 1 or self.body_timeout_s <= 0:
            raise ValueError("max_inflight_per_client and body_timeout_s must be positive")

    @property
    def drain_bytes(self) -> int:
        """How much of a body over the limit is still read (and discarded) before the 413
        goes out: 4 times ``max_body_bytes``, at least 64 MiB."""
        return max(4 * self.max_body_bytes, 64 * 2**20)


def parse_predict(
    payload_or_body: bytes | bytearray | Any, model: ServedModel, limits: RequestLimits | None = None
) -> tuple[str, np.ndarray]:
    """Check a predict request and return the answer's key and the validated batch.

    No HTTP is involved: the service calls this in a worker thread on the body
    it read, and a test can call it on a body or a decoded payload directly.

    Args:
        payload_or_body: the request body (``bytes``, decoded as JSON here), or
            the payload already decoded (a dict, normally).
        model: the model the request is for (its input name, shape and dtype).
        limits: ``max_instances`` is taken from here (default :class:`RequestLimits`).

    Returns:
        ``("predictions", batch)`` for ``{"instances": ...}`` (row format) and
        ``("outputs", batch)`` for ``{"inputs": ...}`` (columnar format).

    Raises:
        RequestError: 400, with the codes ``malformed_json``, ``bad_request``,
            ``unknown_signature`` and those of :meth:`ServedModel.validate`.
    """
    limits = limits or RequestLimits()
    if isinstance(payload_or_body, (bytes, bytearray)):
        try:
            payload = _loads_in_pieces(bytes(payload_or_body))
        except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
            raise RequestError(400, "malformed_json", f"the body is not valid JSON: {err}") from None
    else:
        payload = payload_or_body
    if not isinstance(payload, dict):
        raise RequestError(400, "bad_request", "the body must be a JSON object with 'instances' or 'inputs'")
    signature = payload.get("signature_name", "serving_default")
    if signature not in ("serving_default", "serve", ""):
        raise RequestError(400, "unknown_signature", f"no signature {signature!r}; use 'serving_default'")
    if ("instances" in payload) == ("inputs" in payload):
        raise RequestError(400, "bad_request", "give exactly one of 'instances' (row format) or 'inputs' (columnar)")
    key = "instances" if "instances" in payload else "inputs"
    value = payload[key]
    if key == "inputs" and isinstance(value, dict):
        if set(value) != {model.input_name}:
            raise RequestError(400, "bad_request", f"'inputs' must have the one key {model.input_name!r}")
        value = value[model.input_name]
    return ("predictions" if key == "instances" else "outputs"), model.validate(value, limits.max_instances)


async def read_body(chunks: AsyncIterable[bytes], content_length: str | None, limits: RequestLimits) -> bytes:
    """Read a request body from ``chunks``, within ``limits``.

    Raises :class:`RequestError` 400 for a Content-Length that is not a number,
    413 once the body passes ``max_body_bytes``, and 408 (with ``Connection:
    close``) if it is not complete within ``body_timeout_s``. A body somewhat
    over the limit is still read (and discarded) before answering: most
    clients send the whole body before they read the answer, and a server that
    closes the connection early makes them see "connection reset" instead of
    the 413. Beyond ``limits.drain_bytes`` it is not worth reading, and the
    answer goes out at once. Exceptions of ``chunks`` itself (the client went
    away) propagate.
    """
    if content_length is not None and not content_length.isdigit():
        raise RequestError(400, "bad_request", "Content-Length is not a number")
    too_large = RequestError(413, "body_too_large", f"request body over the limit of {limits.max_body_bytes:,} bytes")
    if content_length is not None and int(content_length) > limits.drain_bytes:
        raise too_large
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.body_timeout_s
    stream = chunks.__aiter__()
    parts, size = [], 0
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), max(deadline - loop.time(), 0.0))
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise RequestError(
                408, "body_timeout", f"the request body did not arrive within {limits.body_timeout_s:g} s",
                headers={"Connection": "close"},
            ) from None
        size += len(chunk)
        if size > limits.drain_bytes:
            raise too_large
        if size <= limits.max_body_bytes:
            parts.append(chunk)
    if size > limits.max_body_bytes:
        raise too_large
    return b"".join(parts)


def _render_outputs(key: str, outputs: np.ndarray) -> bytes:
    """The JSON answer's bytes, or 422 for NaN or infinite outputs (runs in a worker thread)."""
    outputs = np.asarray(outputs)
    if outputs.dtype.kind in "fc" and not np.all(np.isfinite(outputs)):
        raise RequestError(
            422, "non_finite_output",
            "the model's output holds NaN or infinite values (an input far outside what the model was "
            "trained on can overflow float32), and JSON has no number for them",
        )
    if len(outputs) <= 1 or outputs.size < 4096:
        return json.dumps({key: outputs.tolist()}, allow_nan=False, separators=(",", ":")).encode()
    pieces = []
    for row in outputs:
        pieces.append(json.dumps(row.tolist(), allow_nan=False, separators=(",", ":")))
        _let_others_run()
    rows = ",".join(pieces)
    return f'{{"{key}":[{rows}]}}'.encode()  # row by row: short calls, as in _loads_in_pieces


def _error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
    """The JSON answer of a refused request: ``{"error": message, "code": code}``."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message, "code": code}, status_code=status, headers=dict(headers or {}))


class ServiceRoutes:
    """The service's endpoints: the models, their statistics, and what is in flight.

    :func:`make_app` wires the methods to Starlette's routes: :meth:`healthz`,
    :meth:`statsz`, :meth:`models_endpoint` (status, metadata, predict) and
    :meth:`http_error`; :meth:`lifespan` creates the worker threads (and the
    batchers, with ``batching``) while the app runs, and stops them after.

    Attributes:
        models: the served models by name.
        stats: what the service has done (:class:`ServiceStats`).
        limits: the per-request and per-client limits (:class:`RequestLimits`).
        inflight: client address -> (requests, body bytes) in flight now.
        batchers: model name -> its batcher, while the app runs (batching only).
    """

    def __init__(self, models: Sequence[ServedModel], limits: RequestLimits, *,
                 batching: BatchingOptions | None = None, model_threads: int = 1, parse_threads: int = 2) -> None:
        self.models = {m.name: m for m in models}
        if len(self.models) != len(models):
            raise ValueError("model names must be distinct")
        if model_threads < 1 or parse_threads < 1:
            raise ValueError("model_threads and parse_threads must be positive")
        self.limits = limits
        self.batching = batching
        self.model_threads = model_threads
        self.parse_threads = parse_threads
        self.stats = ServiceStats()
        self.inflight: dict[str, tuple[int, int]] = {}
        self.batchers: dict[str, _Batcher] = {}
        self.model_executor: ThreadPoolExecutor | None = None
        self.parse_executor: ThreadPoolExecutor | None = None

    def find(self, name: str, version: str | None) -> ServedModel:
        """The model ``name`` (at ``version``, if given), or a 404 :class:`RequestError`."""
        model = self.models.get(name)
        if model is None:
            known = ", ".join(sorted(self.models)) or "none"
            raise RequestError(404, "unknown_model", f"no model named {name!r}; served: {known}")
        if version is not None and version != str(model.version):
            raise RequestError(404, "unknown_version", f"model {name!r} has no version {version}; it serves {model.version}")
        return model

    def admit(self, client: str, content_length: str) -> int:
        """Count a predict request of ``client`` as in flight; its cost in body bytes.

        Raises:
            RequestError: 429 when the client has too many requests, or bytes, in flight.
        """
        limits = self.limits
        cost = min(int(content_length), limits.max_body_bytes) if content_length.isdigit() else limits.max_body_bytes
        count, held = self.inflight.get(client, (0, 0))
        if count >= limits.max_inflight_per_client or (
            count and held + cost > limits.max_inflight_bytes_per_client
        ):
            raise RequestError(
                429, "too_many_requests",
                f"{client} already has {count} requests ({held:,} bytes) in flight; the limits are "
                f"{limits.max_inflight_per_client} requests and {limits.max_inflight_bytes_per_client:,} bytes: "
                "wait for their answers",
                headers={"Retry-After": "1"},
            )
        self.inflight[client] = (count + 1, held + cost)
        return cost

    def release(self, client: str, cost: int) -> None:
        """The request :meth:`admit` counted is answered."""
        count, held = self.inflight.pop(client)
        if count > 1:
            self.inflight[client] = (count - 1, held - cost)

    async def _in_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.parse_executor, fn, *args)

    async def predict(self, request, model: ServedModel):
        """Answer one predict request: 415 and 429 at once; then read, parse, run and render."""
        from starlette.requests import ClientDisconnect
        from starlette.responses import Response

        if not _is_json_media_type(request.headers.get("content-type")):
            raise RequestError(
                415, "unsupported_media_type",
                f"send the body as Content-Type: application/json, not {request.headers.get('content-type')!r}",
            )
        client = request.client.host if request.client else ""
        cost = self.admit(client, request.headers.get("content-length", ""))
        try:
            try:
                body = await read_body(request.stream(), request.headers.get("content-length"), self.limits)
            except ClientDisconnect:
                raise RequestError(400, "client_disconnected", "the client closed the connection") from None
            key, batch = await self._in_worker(parse_predict, body, model, self.limits)
            if model.name in self.batchers:
                outputs = await self.batchers[model.name].submit(batch)
            else:  # one request per model call, `model_threads` calls at a time
                outputs = await _timed_call(self.model_executor, model.predict, batch, self.stats)
            content = await self._in_worker(_render_outputs, key, outputs)
        finally:
            self.release(client, cost)
        return Response(content, media_type="application/json")

    async def models_endpoint(self, request):
        """``/v1/models/...``: status, metadata and predict; every failure as a JSON error."""
        from starlette.responses import JSONResponse

        try:
            model, action = self.resolve(request.method, request.url.path)
            if action is None:
                return JSONResponse({"model_version_status": [{
                    "version": str(model.version), "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""}}]})
            if action == "/metadata":
                return JSONResponse(model.metadata())
            response = await self.predict(request, model)
            self.stats.predictions += 1
            return response
        except RequestError as err:
            self.stats.errors += 1
            if err.status >= 500:
                logger.error("%d %s for %s %s: %s", err.status, err.code, request.method, request.url.path,
                             err.message, exc_info=err)
            return _error_response(err.status, err.code, err.message, err.headers)
        except Exception as err:  # a model failure: 500, logged, and the service goes on
            self.stats.errors += 1
            logger.error("500 internal for %s %s: %s: %s", request.method, request.url.path,
                         type(err).__name__, err, exc_info=err)
            return _error_response(500, "internal", f"{type(err).__name__}: {err}")

    def resolve(self, method: str, path: str) -> tuple[ServedModel, str | None]:
        """The model a ``/v1/models/...`` request is for, and its action: None (status),
        ``"/metadata"`` or ``":predict"``; or a 404 or 405 :class:`RequestError`."""
        match = _PATH.match(path)
        if match is None:
            raise RequestError(404, "not_found", f"no such endpoint {path}")
        model = self.find(match["name"], match["version"])
        action = match["action"]
        if action is None or action == "/metadata":
            if method != "GET":
                raise RequestError(405, "method_not_allowed", f"use GET for {path}")
            return model, action
        if action != ":predict":
            raise RequestError(404, "unsupported_method", f"{action[1:]} is not served; use :predict")
        if method != "POST":
            raise RequestError(405, "method_not_allowed", "use POST for :predict")
        return model, action

    async def healthz(self, request):
        """``GET /healthz``: liveness, and the models served."""
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ok", "models": sorted(self.models)})

    async def statsz(self, request):
        """``GET /statsz``: :attr:`stats` as JSON."""
        from starlette.responses import JSONResponse

        return JSONResponse(dataclasses.asdict(self.stats))

    async def http_error(self, request, exc):
        """Starlette's own 404 and 405 (no route matched), as JSON errors."""
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(exc.status_code, code, str(exc.detail))

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        """While the app runs: the model and parse threads, and the batchers (with ``batching``)."""
        self.model_executor = ThreadPoolExecutor(max_workers=self.model_threads, thread_name_prefix="model")
        self.parse_executor = ThreadPoolExecutor(max_workers=self.parse_threads, thread_name_prefix="parse")
        self.batchers = {}
        app.state.model_executor = self.model_executor
        app.state.batchers = self.batchers
        if self.batching is not None:
            for model in self.models.values():
                batcher = _Batcher(model.predict, self.batching, self.stats)
                batcher.start()
                self.batchers[model.name] = batcher
        try:
            yield
        finally:
            for batcher in self.batchers.values():
                await batcher.stop()
            self.model_executor.shutdown(wait=False)
            self.parse_executor.shutdown(wait=False)


def make_app(
    models: ServedModel | Sequence[ServedModel],
    *,
    batching: BatchingOptions | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_instances: int = DEFAULT_MAX_INSTANCES,
    model_threads: int = 1,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    max_inflight_per_client: int = DEFAULT_MAX_INFLIGHT_PER_CLIENT,
    max_inflight_bytes_per_client: int | None = None,
    parse_threads: int = 2,
):
    """Build the Starlette application that serves ``models``.

    Args:
        models: one model or several (distinct names).
        batching: server-side batching options; None runs each request on its own.
        model_threads: without batching, how many model calls may run at once
            (with batching, ``batching.num_batch_threads`` says it).
        max_body_bytes: larger bodies are answered with 413 (read and discarded first
            up to 4 times this, at least 64 MiB, so the client gets to see the answer).
        max_instances: more instances in one request are refused with 400.
        body_timeout_s: a body not complete this many seconds after the headers is
            answered with 408, and the connection closed (slow clients hold no slot).
        max_inflight_per_client: predict requests beyond this many in flight from
            one client address are answered with 429 at once.
        max_inflight_bytes_per_client: so are requests that would take the request
            bodies in flight from one address past this many bytes (by Content-Length,
            else ``max_body_bytes``); one request is always let in. Default: twice
            ``max_body_bytes``, so one client holds at most two maximum bodies.
        parse_threads: worker threads that parse, validate and serialise request
            and answer bodies, off the event loop (which keeps answering the others).

    Returns:
        An ASGI application. ``app.state.stats`` is its :class:`ServiceStats`;
        ``app.state.routes`` its :class:`ServiceRoutes`; ``app.state.batchers``
        maps model names to their batchers while the app runs (batching only).
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    served = [models] if isinstance(models, ServedModel) else list(models)
    if len({m.name for m in served}) != len(served):
        raise ValueError("model names must be distinct")
    if model_threads < 1 or parse_threads < 1 or max_inflight_per_client < 1 or body_timeout_s <= 0:
        raise ValueError("model_threads, parse_threads, max_inflight_per_client and body_timeout_s must be positive")
    limits = RequestLimits(max_body_bytes=max_body_bytes, max_instances=max_instances, body_timeout_s=body_timeout_s,
                           max_inflight_per_client=max_inflight_per_client,
                           max_inflight_bytes_per_client=max_inflight_bytes_per_client)
    routes = ServiceRoutes(served, limits, batching=batching, model_threads=model_threads,
                           parse_threads=parse_threads)
    app = Starlette(
        routes=[
            Route("/healthz", routes.healthz, methods=["GET"]),
            Route("/statsz", routes.statsz, methods=["GET"]),
            Route("/v1/models/{rest:path}", routes.models_endpoint, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ],
        lifespan=routes.lifespan,
        exception_handlers={HTTPException: routes.http_error},
    )
    app.state.stats = routes.stats
    app.state.routes = routes
    return app


# --------------------------------------------------------------------------
# Running the service


@dataclass
class ServerLimits:
    """What the server grants one connection, and how many connections it keeps.

    Attributes:
        header_timeout_s: a request's line and headers must all arrive within this
            many seconds of the connection being opened (on a kept-open connection,
            of the request's first byte); otherwise the connection is closed, with
            a 408 answer if part of a request had come. Bytes that trickle in do
            not extend the deadline.
        keep_alive_s: an idle kept-open connection is closed after this many seconds.
        max_connections: with more connections open, requests are answered with
            uvicorn's 503; beyond twice this many, new connections are closed at once.
        max_header_bytes: a request line and headers larger than this get a 400.

    The body's deadline is :func:`make_app`'s ``body_timeout_s``.
    """

    header_timeout_s: float = 5.0
    keep_alive_s: float = 5.0
    max_connections: int = 100
    max_header_bytes: int = 16 * 1024

    def __post_init__(self) -> None:
        if (self.header_timeout_s <= 0 or self.keep_alive_s <= 0 or self.max_connections < 1
                or self.max_header_bytes < 1024):
            raise ValueError(f"invalid server limits {self}")


def _set_nodelay(sock: Any) -> None:
    """Turn off Nagle's algorithm: a small answer goes out at once, not after the client's delayed ACK."""
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _header_timeout_answer(limits: ServerLimits) -> bytes:
    """The raw 408 answer sent when part of a request came but its head did not arrive in time."""
    body = json.dumps({
        "error": f"the request line and headers did not arrive within {limits.header_timeout_s:g} s",
        "code": "header_timeout",
    }).encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def _guarded_protocol(limits: ServerLimits):
    """uvicorn's h11 protocol with TCP_NODELAY, a deadline per request head, and a hard connection cap.

    uvicorn arms its keep-alive timer only after an answer, and cancels it at
    the next byte received; a client that sends nothing, or half a request, or
    a byte every few seconds, would keep its connection forever. This subclass
    gives each request head a deadline that incoming bytes do not extend, and a
    request whose answer went out before its body was read (413, 415, 429...)
    the same time to finish sending it (uvicorn discards the rest).
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    hard_cap = 2 * limits.max_connections
    timeout_answer = _header_timeout_answer(limits)

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _deadline_kind = ""

        def connection_made(self, transport) -> None:  # type: ignore[override]
            _set_nodelay(transport.get_extra_info("socket"))
            super().connection_made(transport)
            if len(self.connections) > hard_cap:
                logger.info("closing a connection from %s: %d connections open", self.client, len(self.connections))
                self.transport.close()
                return
            self._start_deadline("head")

        def connection_lost(self, exc) -> None:
            self._cancel_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:
                self._start_deadline("head")  # the first byte of a request on a kept-open connection
            super().data_received(data)
            self._settle_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                if self.conn.their_state is h11.SEND_BODY:
                    self._start_deadline("rest of body")  # answered early: the body's rest is discarded
                else:
                    self._settle_deadline()

        def _settle_deadline(self) -> None:
            state = self.conn.their_state
            if (self._deadline_kind == "head" and state is not h11.IDLE) or (
                self._deadline_kind == "rest of body" and state is not h11.SEND_BODY
            ):
                self._cancel_deadline()
            if self._deadline is None and state is h11.IDLE and self.conn.trailing_data[0]:
                self._start_deadline("head")  # part of a pipelined request is waiting

        def _start_deadline(self, kind: str) -> None:
            self._cancel_deadline()
            self._deadline_kind = kind
            self._deadline = self.loop.call_later(limits.header_timeout_s, self._deadline_passed)

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline, self._deadline_kind = None, ""

        def _deadline_passed(self) -> None:
            kind = self._deadline_kind
            self._deadline, self._deadline_kind = None, ""
            if self.transport.is_closing():
                return
            if kind == "head" and self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
                self.transport.write(timeout_answer)  # part of a request came: say why we hang up
            logger.info("closing the connection from %s: its %s did not arrive within %g s",
                        self.client, "request head" if kind == "head" else kind, limits.header_timeout_s)
            self.transport.close()

    return GuardedH11Protocol


def _server_config(app, limits: ServerLimits, *, log_level: str = "warning", access_log: bool = False,
                   shutdown_timeout: float = 10.0):
    """The uvicorn configuration every way of running the service uses."""
    import uvicorn

    return uvicorn.Config(
        app, http=_guarded_protocol(limits), lifespan="on", log_level=log_level, access_log=access_log,
        log_config=None, timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]
        limit_concurrency=limits.max_connections + 1,  # uvicorn counts the asking connection too
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_graceful_shutdown=max(1, int(shutdown_timeout / 2)),
    )


def _listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket. Created with ``IPPROTO_TCP``: asyncio turns Nagle off only on sockets
    whose protocol says TCP, and accepted sockets inherit the listening socket's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _set_nodelay(sock)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def is_loopback(host: str) -> bool:
    """True if ``host`` (a name or an address) resolves to a loopback address only."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_host(host: str, allow_remote: bool = False) -> None:
    """Refuse a non-loopback listen address unless ``allow_remote``; warn when it is allowed.

    Raises:
        ValueError: ``host`` is not a loopback address and ``allow_remote`` is False.
    """
    if is_loopback(host):
        return
    if not allow_remote:
        raise ValueError(
            f"{host!r} is not a loopback address: the service has no authentication and no TLS; "
            "to listen there anyway, allow it explicitly (--allow-remote, allow_external=True), "
            "and put a reverse proxy in front"
        )
    logger.warning(
        "listening on %s, which is not a loopback address: anyone who can reach this machine can use the "
        "service, which has no authentication and no TLS; put a reverse proxy in front", host,
    )


@dataclass
class RunningService:
    """A service started by :func:`run_in_thread`: where it listens."""

    host: str
    port: int
    server: Any = field(repr=False)
    app: Any = field(repr=False)

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@contextlib.contextmanager
def run_in_thread(
    app,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 30.0,
    shutdown_timeout: float = 10.0,
    allow_external: bool = False,
    limits: ServerLimits | None = None,
) -> Iterator[RunningService]:
    """Run ``app`` with uvicorn in a background thread for the ``with`` block.

    The service is stopped when the block ends, also when it ends by an
    exception. ``port=0`` lets the system pick a free port (see ``.port``).
    ``limits`` (default :class:`ServerLimits`) bounds slow and idle clients.

    Raises:
        ValueError: ``host`` is not a loopback address and ``allow_external`` is False.
        RuntimeError: the server did not start within ``startup_timeout`` seconds.
    """
    import uvicorn

    check_host(host, allow_remote=allow_external)
    sock = _listening_socket(host, port)
    config = _server_config(app, limits or ServerLimits(), shutdown_timeout=shutdown_timeout)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as err:  # reported to the caller below
            failure.append(err)

    thread = threading.Thread(target=target, name=f"dlbook-serve-{sock.getsockname()[1]}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                reason = f": {failure[0]!r}" if failure else ""
                raise RuntimeError(f"the service did not start within {startup_timeout} s{reason}")
            time.sleep(0.01)
        yield RunningService(host, sock.getsockname()[1], server, app)
    finally:
        server.should_exit = True
        thread.join(shutdown_timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(shutdown_timeout)
        sock.close()


@dataclass
class RunningProcess:
    """A service started by :func:`run_in_process`: its URL, process id and log file."""

    url: str
    pid: int
    log_path: Path


@contextlib.contextmanager
def run_in_process(
    model_dir: str | os.PathLike,
    name: str,
    *,
    batching: BatchingOptions | None = None,
    args: Sequence[str] = (),
    log_path: str | os.PathLike | None = None,
    startup_timeout: float = 180.0,
    shutdown_timeout: float = 15.0,
) -> Iterator[RunningProcess]:
    """Serve a SavedModel with ``python -m dlbook.serve`` in its own process for the ``with`` block.

    The process listens on 127.0.0.1 on a port the system picks; its output
    (TensorFlow's and uvicorn's logs) goes to ``log_path`` (a temporary file by
    default), not to the caller's. It is stopped (SIGTERM, then SIGKILL after
    ``shutdown_timeout``) when the block ends, also by an exception.

    Raises:
        RuntimeError: the service exited, or did not answer ``/healthz`` within ``startup_timeout``.
    """
    with tempfile.TemporaryDirectory(prefix="dlbook-serve-") as tmp:
        url_file = Path(tmp) / "url"
        log = Path(log_path) if log_path is not None else Path(tmp) / "serve.log"
        command = [sys.executable, "-m", "dlbook.serve", str(model_dir), "--name", name,
                   "--host", "127.0.0.1", "--port", "0", "--url-file", str(url_file)]
        if batching is not None:
            command += ["--batching", "--max-batch-size", str(batching.max_batch_size),
                        "--batch-timeout-ms", str(1000 * batching.batch_timeout_s),
                        "--num-batch-threads", str(batching.num_batch_threads)]
        command += list(args)
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if process.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the service exited with status {process.returncode}:\n{tail}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start within {startup_timeout} s")
                if url_file.exists():
                    url = url_file.read_text().strip()
                    with contextlib.suppress(OSError):
                        if request_json(f"{url}/healthz", timeout=5)[0] == 200:
                            break
                time.sleep(0.1)
            yield RunningProcess(url, process.pid, log)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(shutdown_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(shutdown_timeout)


# --------------------------------------------------------------------------
# A minimal client (the standard library's urllib)


def request_json(
    url: str, payload: Any = None, *, data: bytes | None = None, method: str | None = None,
    headers: Mapping[str, str] | None = None, timeout: float = 10.0,
) -> tuple[int, Any]:
    """Send one HTTP request and return ``(status, decoded JSON body)``.

    ``payload`` is encoded as JSON; ``data`` sends raw bytes instead (to test
    malformed bodies). 4xx and 5xx answers are returned, not raised.
    """
    if data is None and payload is not None:
        data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body)
        except ValueError:
            return err.code, {"error": body.decode(errors="replace")}


def post_json(url: str, payload: Any, timeout: float = 10.0) -> tuple[int, Any]:
    """POST ``payload`` as JSON; return ``(status, body)``."""
    return request_json(url, payload, timeout=timeout)


# --------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    """Refuses a non-loopback ``--host`` unless ``--allow-remote`` is given."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        namespace, rest = super().parse_known_args(args, namespace)
        if not namespace.allow_remote and not is_loopback(namespace.host):
            self.error(f"--host {namespace.host} is not a loopback address; the service has no authentication "
                       "and no TLS: add --allow-remote to listen there anyway (behind a reverse proxy)")
        return namespace, rest


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m dlbook.serve``."""
    limits = ServerLimits()
    parser = _Parser(prog="python -m dlbook.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="a SavedModel folder (keras.Model.export)")
    parser.add_argument("--name", required=True, help="the model name in the URLs")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default loopback only)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host that is not a loopback address (warned about: no auth, no TLS)")
    parser.add_argument("--port", type=int, default=8501, help="TF Serving's REST port by default; 0: any free port")
    parser.add_argument("--url-file", help="write the service's URL to this file once it listens")
    parser.add_argument("--batching", action="store_true", help="batch concurrent requests")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0)
    parser.add_argument("--num-batch-threads", type=int, default=1)
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--body-timeout-s", type=float, default=DEFAULT_BODY_TIMEOUT_S)
    parser.add_argument("--max-inflight-per-client", type=int, default=DEFAULT_MAX_INFLIGHT_PER_CLIENT)
    parser.add_argument("--header-timeout-s", type=float, default=limits.header_timeout_s)
    parser.add_argument("--keep-alive-s", type=float, default=limits.keep_alive_s)
    parser.add_argument("--max-connections", type=int, default=limits.max_connections)
    return parser


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - runs a server
    """Serve a SavedModel until interrupted (SIGINT or SIGTERM: a graceful shutdown)."""
    import uvicorn

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_host(args.host, allow_remote=args.allow_remote)
    model = ServedModel.from_saved_model(args.model_dir, name=args.name, version=args.version)
    batching = (BatchingOptions(args.max_batch_size, args.batch_timeout_ms / 1000, args.num_batch_threads)
                if args.batching else None)
    app = make_app(model, batching=batching, max_body_bytes=args.max_body_bytes,
                   body_timeout_s=args.body_timeout_s, max_inflight_per_client=args.max_inflight_per_client)
    limits = ServerLimits(header_timeout_s=args.header_timeout_s, keep_alive_s=args.keep_alive_s,
                          max_connections=args.max_connections)
    sock = _listening_socket(args.host, args.port)
    sock.listen(2048)  # connections wait in the backlog until the server's loop runs
    port = sock.getsockname()[1]
    url = RunningService(args.host, port, None, None).url
    logger.info("serving %s (version %d) at %s/v1/models/%s", args.name, args.version, url, args.name)
    if args.url_file:
        partial = Path(args.url_file + ".partial")
        partial.write_text(url + "\n")
        partial.replace(args.url_file)
    server = uvicorn.Server(_server_config(app, limits, log_level="info"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


if __name__ == "__main__":  # pragma: no cover
    main()
