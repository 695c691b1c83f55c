"""A bounded HTTP load test: a fixed number of requests from concurrent clients.

Chapter 11 measures its prediction service with this. Each client is a thread
that sends one request, waits for the answer, then sends the next (a closed
loop), on one kept-open connection (HTTP keep-alive, as real clients and load
balancers do), reopened only after a failure; every request has a timeout,
and the test ends when every request has been answered or has failed, so it
always stops by itself.

A closed loop sends a new request only when an answer comes back: while the
server stalls, the clients stall with it and send nothing, so the requests a
steady stream of users would have sent during the stall are never timed
(*coordinated omission*), and the high percentiles look better than users
would see them. Read them as the latency at the throughput the test reached,
and look at latency over time (``starts_s``) for the stalls.

Run in the notebook's own process, the clients would compete with an
in-process server for Python's global interpreter lock and distort what they
measure; :func:`in_subprocess` therefore runs them in a separate Python
process (``python -m dlbook.loadtest``). Only the standard library is used,
so that process starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Sequence

HEADERS = {"Content-Type": "application/json"}


def send(url: str, body: bytes, timeout: float) -> tuple[int, float]:
    """POST one JSON body on a new connection; return ``(status, seconds)``. Status 0: no answer."""
    request = urllib.request.Request(url, data=body, method="POST", headers=HEADERS)
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        err.read()
        status = err.code
    except (urllib.error.URLError, OSError):
        status = 0
    return status, time.perf_counter() - start


class Client:
    """One client's connection to ``url``'s server, kept open between requests.

    A request that fails on a kept-open connection before any answer came (the
    server had closed the idle connection) is sent once more on a new one, as
    browsers and HTTP libraries do; any other failure is status 0, and the
    next request opens a new connection.
    """

    def __init__(self, url: str, timeout: float, keep_alive: bool = True) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"an http:// URL is needed, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.keep_alive = keep_alive
        self.connection: http.client.HTTPConnection | None = None
        self.opened = 0  # connections opened, for the curious

    def post(self, body: bytes) -> int:
        """POST ``body``; the answer's status, or 0 if none came."""
        for attempt in range(2):
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.opened += 1
            try:
                self.connection.request("POST", self.path, body=body, headers=HEADERS)
                response = self.connection.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if reused and attempt == 0:
                    continue  # the server closed the idle connection: once more, on a new one
                return 0
            except (OSError, http.client.HTTPException):
                self.close()
                return 0
            if response.will_close or not self.keep_alive:
                self.close()
            return response.status
        return 0  # pragma: no cover - the loop returns

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def run(url: str, bodies: Sequence[bytes], clients: int, timeout: float = 30.0, *,
        requests: int | None = None, keep_alive: bool = True) -> dict:
    """Send ``requests`` bodies (default: each of ``bodies`` once, cycling if more) from ``clients`` threads.

    Returns:
        ``{"statuses", "latencies_s", "starts_s", "wall_s", "connections", "load_average"}``:
        per request in order, its status (0: no answer), latency and start
        (seconds after the test began); the test's duration; how many TCP
        connections the clients opened; the machine's load average (1, 5 and
        15 minutes, where the system reports it) at the end.
    """
    if clients < 1:
        raise ValueError("clients must be at least 1")
    if not bodies:
        raise ValueError("give at least one body")
    total = len(bodies) if requests is None else requests
    statuses, latencies, starts = [0] * total, [0.0] * total, [0.0] * total
    lock, next_index = threading.Lock(), iter(range(total))
    workers = [Client(url, timeout, keep_alive) for _ in range(min(clients, max(total, 1)))]
    begin = time.perf_counter()

    def loop(client: Client) -> None:
        try:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                start = time.perf_counter()
                statuses[i] = client.post(bodies[i % len(bodies)])
                latencies[i] = time.perf_counter() - start
                starts[i] = start - begin
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(c,), name=f"load-client-{n}", daemon=True)
               for n, c in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "statuses": statuses,
        "latencies_s": latencies,
        "starts_s": starts,
        "wall_s": time.perf_counter() - begin,
        "connections": sum(c.opened for c in workers),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def in_subprocess(url: str, bodies: Sequence[bytes], clients: int, timeout: float = 30.0, *,
                  requests: int | None = None, keep_alive: bool = True) -> dict:
    """:func:`run` in a separate Python process; same result.

    The bodies go through a temporary file, one per line (JSON has no raw
    newlines). The process is killed if it outlives the worst case of every
    request timing out in turn (twice, with the one retry), plus a minute.
    """
    if any(b"\n" in body for body in bodies):
        raise ValueError("bodies must not contain newlines")
    total = len(bodies) if requests is None else requests
    with tempfile.TemporaryDirectory(prefix="dlbook-load-") as tmp:
        path = Path(tmp) / "bodies.jsonl"
        path.write_bytes(b"\n".join(bodies) + b"\n")
        limit = 60 + 2 * timeout * -(-total // clients)
        command = [sys.executable, "-m", "dlbook.loadtest", url, str(path), "--clients", str(clients),
                   "--timeout", str(timeout), "--requests", str(total)]
        if not keep_alive:
            command.append("--no-keep-alive")
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the load-test process failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m dlbook.loadtest URL BODIES.jsonl --clients 8``: print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m dlbook.loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("bodies", help="a file with one request body per line")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--requests", type=int, help="how many requests (default: one per body; bodies cycle)")
    parser.add_argument("--no-keep-alive", dest="keep_alive", action="store_false",
                        help="a new connection for every request")
    args = parser.parse_args(argv)
    bodies = [line for line in Path(args.bodies).read_bytes().split(b"\n") if line.strip()]
    json.dump(run(args.url, bodies, args.clients, args.timeout, requests=args.requests,
                  keep_alive=args.keep_alive), sys.stdout)


if __name__ == "__main__":
    main()
