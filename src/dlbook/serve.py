"""A small prediction service that answers in TensorFlow Serving's REST shape.

Chapter 11 serves its exported CIFAR-10 model with this module. The service
speaks the subset of the TensorFlow Serving REST API that clients use, so the
same client code works against ``tensorflow_model_server`` in production::

    POST /v1/models/<name>[/versions/<v>]:predict   {"instances": [...]} -> {"predictions": [...]}
                                                    {"inputs": [...]}    -> {"outputs": [...]}
    GET  /v1/models/<name>[/versions/<v>]           model status (TF Serving's health check)
    GET  /v1/models/<name>[/versions/<v>]/metadata  signature: input/output dtype and shape
    GET  /healthz                                   liveness: {"status": "ok", "models": [...]}

Every bad request gets a 4xx answer with a JSON body ``{"error": message,
"code": short_code}`` (TF Serving's ``{"error": ...}`` plus a code a program
can test), and the service keeps answering the next request.

Optionally, concurrent requests are batched on the server (TF Serving's
``--enable_batching``): requests that arrive within ``batch_timeout_s`` of the
first, up to ``max_batch_size`` instances, run through the model as one batch.

The web framework is Starlette on the uvicorn ASGI server: both small, pure
Python, widely used and actively maintained (FastAPI is built on the same
pair). They are imported lazily, so ``import dlbook`` never needs them;
TensorFlow is imported only by :meth:`ServedModel.from_saved_model`.

Typical use, in a notebook or a test (always on loopback, always stopped)::

    model = ServedModel.from_saved_model("export/cifar10", name="cifar10")
    with run_in_thread(make_app(model)) as service:
        status, body = post_json(service.url + "/v1/models/cifar10:predict",
                                 {"instances": images.tolist()})

From a shell: ``python -m dlbook.serve export/cifar10 --name cifar10 --port 8501``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

DEFAULT_MAX_BODY_BYTES = 8 * 2**20
"""Largest request body accepted (8 MiB, about 500 CIFAR-10 images as JSON)."""

DEFAULT_MAX_INSTANCES = 256
"""Most instances accepted in one request."""

_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<action>:[a-z]+|/metadata)?$"
)


class RequestError(Exception):
    """A client error, answered with ``status`` and ``{"error": message, "code": code}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


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
            array = np.asarray(value)
        except (ValueError, TypeError):  # NumPy 2: ragged nesting is an error
            raise RequestError(
                400, "wrong_shape", "instances are ragged: every instance must have the same nested list shape"
            ) from None
        if array.dtype == object:
            kinds = _leaf_types(value)
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
        max_batch_size: stop collecting once a batch holds this many instances.
        batch_timeout_s: how long the first request of a batch waits for others.
        num_batch_threads: how many batches may run through the model at once.
    """

    max_batch_size: int = 32
    batch_timeout_s: float = 0.002
    num_batch_threads: int = 1

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.batch_timeout_s < 0 or self.num_batch_threads < 1:
            raise ValueError(f"invalid batching options {self}")


@dataclass
class ServiceStats:
    """What a running service has done, per app (``app.state.stats``): a minimal monitor.

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
    return outputs, time.perf_counter() - start


async def _timed_call(executor, predict: Callable[[np.ndarray], Any], batch: np.ndarray, stats: ServiceStats):
    outputs, seconds = await asyncio.get_running_loop().run_in_executor(executor, _run_timed, predict, batch)
    stats.model_call(len(batch), seconds)
    return outputs


class _Batcher:
    """Collects concurrent requests of one model into batches (runs on the event loop)."""

    def __init__(self, predict: Callable[[np.ndarray], Any], options: BatchingOptions,
                 stats: ServiceStats | None = None) -> None:
        self.predict = predict
        self.options = options
        self.stats = stats if stats is not None else ServiceStats()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=options.num_batch_threads, thread_name_prefix="batch")
        self.running: set[asyncio.Future] = set()
        self.sizes: list[int] = []  # instances per model call, for the curious
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
        while not self.queue.empty():
            _, future = self.queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the service is shutting down"))
        self.executor.shutdown(wait=False)

    async def submit(self, batch: np.ndarray) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((batch, future))
        return await future

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(self.options.num_batch_threads)
        while True:
            items = [await self.queue.get()]
            size = len(items[0][0])
            deadline = loop.time() + self.options.batch_timeout_s
            while size < self.options.max_batch_size:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                items.append(item)
                size += len(item[0])
            await limit.acquire()
            run = loop.create_task(self._run(items, limit))
            self.running.add(run)
            run.add_done_callback(self.running.discard)

    async def _run(self, items: list, limit: asyncio.Semaphore) -> None:
        loop = asyncio.get_running_loop()
        try:
            batch = np.concatenate([x for x, _ in items])
            self.sizes.append(len(batch))
            outputs = await _timed_call(self.executor, self.predict, batch, self.stats)
            start = 0
            for x, future in items:
                if not future.done():
                    future.set_result(outputs[start : start + len(x)])
                start += len(x)
        except Exception as err:  # the model failed: every waiting request learns why
            for _, future in items:
                if not future.done():
                    future.set_exception(err)
        finally:
            limit.release()


def make_app(
    models: ServedModel | Sequence[ServedModel],
    *,
    batching: BatchingOptions | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_instances: int = DEFAULT_MAX_INSTANCES,
    model_threads: int = 1,
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

    Returns:
        An ASGI application. ``app.state.stats`` is its :class:`ServiceStats`;
        ``app.state.batchers`` maps model names to their batchers while the app
        runs (batching only).
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    served = [models] if isinstance(models, ServedModel) else list(models)
    stats = ServiceStats()
    by_name = {m.name: m for m in served}
    if len(by_name) != len(served):
        raise ValueError("model names must be distinct")

    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": message, "code": code}, status_code=status)

    drain_limit = max(4 * max_body_bytes, 64 * 2**20)

    async def read_body(request: Request) -> bytes:
        """The body, or 413 once it passes `max_body_bytes`.

        A body somewhat over the limit is still read (and discarded) before
        answering: most clients send the whole body before they read the
        answer, and a server that closes the connection early makes them see
        "connection reset" instead of the 413. Beyond `drain_limit` it is not
        worth reading, and the answer goes out at once.
        """
        declared = request.headers.get("content-length")
        if declared is not None and not declared.isdigit():
            raise RequestError(400, "bad_request", "Content-Length is not a number")
        too_large = RequestError(
            413, "body_too_large", f"request body over the limit of {max_body_bytes:,} bytes"
        )
        if declared is not None and int(declared) > drain_limit:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > drain_limit:
                raise too_large
            if size <= max_body_bytes:
                chunks.append(chunk)
        if size > max_body_bytes:
            raise too_large
        return b"".join(chunks)

    def find(name: str, version: str | None) -> ServedModel:
        model = by_name.get(name)
        if model is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise RequestError(404, "unknown_model", f"no model named {name!r}; served: {known}")
        if version is not None and version != str(model.version):
            raise RequestError(404, "unknown_version", f"model {name!r} has no version {version}; it serves {model.version}")
        return model

    async def predict(request: Request, model: ServedModel) -> JSONResponse:
        body = await read_body(request)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
            raise RequestError(400, "malformed_json", f"the body is not valid JSON: {err}") from None
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
        batch = model.validate(value, max_instances)
        batchers = getattr(request.app.state, "batchers", {})
        if model.name in batchers:
            outputs = await batchers[model.name].submit(batch)
        else:  # one request per model call, `model_threads` calls at a time
            outputs = await _timed_call(request.app.state.model_executor, model.predict, batch, stats)
        return JSONResponse({"predictions" if key == "instances" else "outputs": outputs.tolist()})

    async def models_endpoint(request: Request) -> JSONResponse:
        match = _PATH.match(request.url.path)
        try:
            if match is None:
                raise RequestError(404, "not_found", f"no such endpoint {request.url.path}")
            model = find(match["name"], match["version"])
            action = match["action"]
            if action is None or action == "/metadata":
                if request.method != "GET":
                    raise RequestError(405, "method_not_allowed", f"use GET for {request.url.path}")
                if action is None:
                    return JSONResponse({"model_version_status": [{
                        "version": str(model.version), "state": "AVAILABLE",
                        "status": {"error_code": "OK", "error_message": ""}}]})
                return JSONResponse(model.metadata())
            if action != ":predict":
                raise RequestError(404, "unsupported_method", f"{action[1:]} is not served; use :predict")
            if request.method != "POST":
                raise RequestError(405, "method_not_allowed", "use POST for :predict")
            response = await predict(request, model)
            stats.predictions += 1
            return response
        except RequestError as err:
            stats.errors += 1
            return error(err.status, err.code, err.message)
        except Exception as err:  # a model failure: 500, and the service goes on
            stats.errors += 1
            return error(500, "internal", f"{type(err).__name__}: {err}")

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "models": sorted(by_name)})

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    if model_threads < 1:
        raise ValueError("model_threads must be at least 1")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.model_executor = ThreadPoolExecutor(max_workers=model_threads, thread_name_prefix="model")
        app.state.batchers = {}
        if batching is not None:
            for model in served:
                batcher = _Batcher(model.predict, batching, stats)
                batcher.start()
                app.state.batchers[model.name] = batcher
        try:
            yield
        finally:
            for batcher in app.state.batchers.values():
                await batcher.stop()
            app.state.model_executor.shutdown(wait=False)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/models/{rest:path}", models_endpoint, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.stats = stats
    return app


# --------------------------------------------------------------------------
# Running the service


def is_loopback(host: str) -> bool:
    """True if ``host`` (a name or an address) resolves to a loopback address only."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


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
) -> Iterator[RunningService]:
    """Run ``app`` with uvicorn in a background thread for the ``with`` block.

    The service is stopped when the block ends, also when it ends by an
    exception. ``port=0`` lets the system pick a free port (see ``.port``).

    Raises:
        ValueError: ``host`` is not a loopback address and ``allow_external`` is False.
        RuntimeError: the server did not start within ``startup_timeout`` seconds.
    """
    import uvicorn

    if not allow_external and not is_loopback(host):
        raise ValueError(f"{host!r} is not a loopback address; pass allow_external=True to listen there")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, log_config=None, lifespan="on",
        timeout_graceful_shutdown=max(1, int(shutdown_timeout / 2)),
    )
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


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m dlbook.serve``."""
    parser = argparse.ArgumentParser(prog="python -m dlbook.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="a SavedModel folder (keras.Model.export)")
    parser.add_argument("--name", required=True, help="the model name in the URLs")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default loopback only)")
    parser.add_argument("--port", type=int, default=8501, help="TF Serving's REST port by default")
    parser.add_argument("--batching", action="store_true", help="batch concurrent requests")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0)
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    return parser


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - runs a server
    """Serve a SavedModel until interrupted."""
    import uvicorn

    args = build_parser().parse_args(argv)
    model = ServedModel.from_saved_model(args.model_dir, name=args.name, version=args.version)
    batching = BatchingOptions(args.max_batch_size, args.batch_timeout_ms / 1000) if args.batching else None
    app = make_app(model, batching=batching, max_body_bytes=args.max_body_bytes)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":  # pragma: no cover
    main()
