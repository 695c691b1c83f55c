"""A bounded HTTP load test: a fixed number of requests from concurrent clients.

Chapter 11 measures its prediction service with this. Each client is a thread
that sends one request, waits for the answer, then sends the next (a closed
loop); every request has a timeout, and the test ends when every request has
been answered or has failed, so it always stops by itself.

Run in the notebook's own process, the clients would compete with an
in-process server for Python's global interpreter lock and distort what they
measure; :func:`in_subprocess` therefore runs them in a separate Python
process (``python -m dlbook.loadtest``). Only the standard library is used,
so that process starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence


def send(url: str, body: bytes, timeout: float) -> tuple[int, float]:
    """POST one JSON body; return ``(status, seconds)``. Status 0: no answer (timeout, refused)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
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


def run(url: str, bodies: Sequence[bytes], clients: int, timeout: float = 30.0) -> dict:
    """Send every body once, from ``clients`` concurrent threads.

    Returns:
        ``{"statuses": [...], "latencies_s": [...], "wall_s": float}``, one
        status and latency per body, in the order of ``bodies``.
    """
    if clients < 1:
        raise ValueError("clients must be at least 1")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(lambda body: send(url, body, timeout), bodies))
    return {
        "statuses": [status for status, _ in results],
        "latencies_s": [seconds for _, seconds in results],
        "wall_s": time.perf_counter() - start,
    }


def in_subprocess(url: str, bodies: Sequence[bytes], clients: int, timeout: float = 30.0) -> dict:
    """:func:`run` in a separate Python process; same result.

    The bodies go through a temporary file, one per line (JSON has no raw
    newlines). The process is killed if it outlives the worst case of every
    request timing out in turn, plus a minute.
    """
    if any(b"\n" in body for body in bodies):
        raise ValueError("bodies must not contain newlines")
    with tempfile.TemporaryDirectory(prefix="dlbook-load-") as tmp:
        path = Path(tmp) / "bodies.jsonl"
        path.write_bytes(b"\n".join(bodies) + b"\n")
        limit = 60 + timeout * -(-len(bodies) // clients)
        done = subprocess.run(
            [sys.executable, "-m", "dlbook.loadtest", url, str(path), "--clients", str(clients),
             "--timeout", str(timeout)],
            capture_output=True, text=True, timeout=limit, check=False,
        )
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
    args = parser.parse_args(argv)
    bodies = [line for line in Path(args.bodies).read_bytes().split(b"\n") if line.strip()]
    json.dump(run(args.url, bodies, args.clients, args.timeout), sys.stdout)


if __name__ == "__main__":
    main()
