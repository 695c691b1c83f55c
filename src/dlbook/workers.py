"""Worker processes that a chapter starts, watched and always stopped.

Multi-process chapters start several Python processes that talk to each other
over the loopback interface. Whatever happens in the notebook (a failed cell,
an interrupted kernel, a hung worker), those processes must not outlive it and
must not leave ports bound. This module gives a chapter:

* :func:`free_ports`: distinct TCP ports free on 127.0.0.1 right now;
* :class:`Workers`: a context manager that starts commands, each in its own
  process group, waits for them with a deadline, stops every one of them (and
  their children) on exit, on error and on timeout, and reports their output;
* :func:`port_is_free` and :meth:`Workers.leftovers`: the checks that nothing
  was left behind;
* :func:`run_alone`: one worker on its own, started again when it fails with a
  known transient error (XLA's CPU rendezvous timeout);
* :func:`follow_parent`: called inside a worker, it ends the worker when the
  notebook that started it is gone or a deadline passes.

Nothing here imports TensorFlow or JAX.
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

LOOPBACK = "127.0.0.1"
"""The only address the book's worker processes use."""

_LIVE: "weakref.WeakSet[Workers]" = weakref.WeakSet()


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """Return ``n`` distinct TCP ports that are free on ``host`` right now.

    The sockets are bound together (so the ports differ) and then released;
    another program could take one in the moment before a worker binds it,
    which on a quiet machine does not happen in practice.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True if a new server could listen on ``host:port`` (nothing is bound there).

    Connections that are merely closing (``TIME_WAIT``) do not count as bound.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(1)
        return True
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    finally:
        s.close()


# the first line of a fatal error: an absl/glog FATAL or ERROR log line, a failed CHECK,
# an uncaught C++ exception
_FATAL_LINE = re.compile(r"^([FE]\d{4} |.*Check failed|terminate called|\s*what\(\):)")


@dataclass(frozen=True)
class WorkerResult:
    """What one finished worker left: exit code, output and run time.

    ``returncode`` is negative when the worker was ended by a signal
    (``-9`` for SIGKILL), as in :mod:`subprocess`.
    """

    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of stdout and stderr, for error messages,
        after the first fatal-error line above them if there is one (a C++
        abort prints its reason first and then a long stack trace)."""
        out = (self.stdout.rstrip() + "\n" + self.stderr.rstrip()).strip().splitlines()
        cause = next((line for line in out[:-lines] if _FATAL_LINE.match(line)), None)
        return "\n".join(([cause, "    [...]"] if cause else []) + out[-lines:])


class WorkerError(RuntimeError):
    """A worker failed or the group ran past its deadline; all were stopped."""


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen
    out_path: Path
    err_path: Path
    started: float
    pgid: int


class Workers:
    """Start worker processes as a group and always stop them.

    Use it as a context manager::

        with Workers(timeout=120) as group:
            group.start("w0", [sys.executable, "worker.py", "0"], env={"X": "1"})
            group.start("w1", [sys.executable, "worker.py", "1"])
            results = group.wait()           # raises WorkerError if one fails

    On leaving the block, normally or by an exception (a failed cell, a
    ``KeyboardInterrupt``), every process still running is sent SIGTERM, then
    SIGKILL after ``grace`` seconds, together with any children it started
    (each worker leads its own process group). A group still running when the
    interpreter exits is stopped the same way.

    Args:
        timeout: seconds from the first :meth:`start` after which :meth:`wait`
            stops everything and raises :class:`WorkerError`.
        cwd: working directory of the workers (default: the current one).
        grace: seconds between SIGTERM and SIGKILL when stopping.
    """

    def __init__(self, timeout: float, *, cwd: str | os.PathLike | None = None, grace: float = 3.0):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = float(timeout)
        self.cwd = None if cwd is None else str(cwd)
        self.grace = float(grace)
        self._procs: list[_Proc] = []
        self._pgids: list[int] = []
        self._deadline: float | None = None
        self._logdir = Path(tempfile.mkdtemp(prefix="dlbook-workers-"))
        self._results: dict[str, WorkerResult] = {}
        _LIVE.add(self)

    # -- starting ---------------------------------------------------------
    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``argv`` as worker ``name``; ``env`` entries are added to this
        process's environment (``PYTHONUNBUFFERED=1`` is always set)."""
        if any(p.name == name for p in self._procs):
            raise ValueError(f"a worker named {name!r} was already started")
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in (env or {}).items()})
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env["DLBOOK_PARENT_PID"] = str(os.getpid())
        out_path = self._logdir / f"{name}.out"
        err_path = self._logdir / f"{name}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            popen = subprocess.Popen(
                list(argv), cwd=self.cwd, env=full_env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True,
            )
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self.timeout
        self._procs.append(_Proc(name, popen, out_path, err_path, now, popen.pid))
        self._pgids.append(popen.pid)

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers started so far."""
        return [p.popen.pid for p in self._procs]

    # -- waiting ----------------------------------------------------------
    def _collect(self, proc: _Proc) -> WorkerResult:
        if proc.name not in self._results:
            read = lambda p: p.read_text(encoding="utf-8", errors="replace") if p.exists() else ""  # noqa: E731
            self._results[proc.name] = WorkerResult(
                proc.name, proc.popen.returncode, read(proc.out_path), read(proc.err_path),
                time.monotonic() - proc.started,
            )
        return self._results[proc.name]

    def wait(self, expect: Mapping[str, int] | None = None, poll: float = 0.05) -> dict[str, WorkerResult]:
        """Wait until every worker has ended; return their results by name.

        Args:
            expect: exit codes expected for some workers (default 0 for all);
                ``{"w1": -9}`` for a worker that is meant to be killed.
            poll: seconds between checks.

        Raises:
            WorkerError: a worker ended with an unexpected exit code (the
                others are stopped at once), or the deadline passed (all are
                stopped). The message holds the tail of each worker's output.
        """
        expect = dict(expect or {})
        while True:
            running = [p for p in self._procs if p.popen.poll() is None]
            for p in self._procs:
                if p.popen.returncode is not None:
                    result = self._collect(p)
                    if result.returncode != expect.get(p.name, 0):
                        self.stop()
                        raise WorkerError(
                            f"worker {p.name} exited with code {result.returncode} "
                            f"(expected {expect.get(p.name, 0)}); all workers stopped.\n"
                            + self._report()
                        )
            if not running:
                return {p.name: self._collect(p) for p in self._procs}
            if self._deadline is not None and time.monotonic() > self._deadline:
                self.stop()
                raise WorkerError(
                    f"workers still running after {self.timeout:.0f} s: "
                    f"{', '.join(p.name for p in running)}; all workers stopped.\n" + self._report()
                )
            time.sleep(poll)

    def _report(self) -> str:
        parts = []
        for p in self._procs:
            r = self._collect(p) if p.popen.returncode is not None else None
            head = f"--- {p.name}: " + ("running" if r is None else f"exit code {r.returncode}")
            parts.append(head + ("\n" + r.tail() if r is not None and r.tail() else ""))
        return "\n".join(parts)

    # -- stopping ---------------------------------------------------------
    def stop(self) -> None:
        """Stop every worker and its children: SIGTERM, then SIGKILL after the grace period."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            live = [g for g in self._pgids if _group_alive(g)]
            if not live:
                break
            for pgid in live:
                try:
                    os.killpg(pgid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            end = time.monotonic() + (self.grace if sig == signal.SIGTERM else 5.0)
            while time.monotonic() < end:
                for p in self._procs:
                    p.popen.poll()
                if not any(_group_alive(g) for g in live):
                    break
                time.sleep(0.05)
        for p in self._procs:
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
                pass
            if p.popen.returncode is not None:
                self._collect(p)
        if all(p.name in self._results for p in self._procs):
            shutil.rmtree(self._logdir, ignore_errors=True)  # output is kept in the results

    def leftovers(self) -> list[int]:
        """Process groups of this group's workers that still have a live process."""
        return [g for g in self._pgids if _group_alive(g)]

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# XLA's CPU runtime stops a process whose simulated devices deadlock in a collective
XLA_RENDEZVOUS_TIMEOUT = "Termination timeout for"


def run_alone(name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | Path,
              timeout: float, attempts: int = 3, retry_on: str = XLA_RENDEZVOUS_TIMEOUT,
              log=print) -> WorkerResult:
    """Run one worker in its own :class:`Workers` group and return its result.

    If it fails and its output contains ``retry_on`` (by default the message of
    XLA's rendezvous timeout: on a machine with few cores, the devices that one
    JAX process simulates on the CPU can deadlock in an all-reduce, and XLA
    stops the process after 40 s), it is started again, up to ``attempts`` runs
    in all; ``log`` is told of each retry. Any other failure, or the last one,
    raises :class:`WorkerError`.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")

    def run_once() -> WorkerResult:
        with Workers(timeout=timeout, cwd=cwd) as group:
            group.start(name, argv, env=env)
            return group.wait()[name]

    for attempt in range(1, attempts):
        try:
            return run_once()
        except WorkerError as err:
            if retry_on not in str(err):
                raise
            log(f"{name}: stopped by XLA's rendezvous timeout (run {attempt} of at most {attempts}); "
                "starting it again")
    return run_once()  # the last run: any failure raises


def _group_alive(pgid: int) -> bool:
    """True if some process of process group ``pgid`` is still alive (zombies excluded)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - not ours
        return True
    # killpg(0) also succeeds for zombies; look for a live member on Linux.
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - non-Linux
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@atexit.register
def _stop_all() -> None:  # pragma: no cover - runs at interpreter exit
    for group in list(_LIVE):
        try:
            group.stop()
        except Exception:
            pass


def follow_parent(deadline_s: float | None = None, poll: float = 0.5) -> None:
    """End this (worker) process when its parent is gone or after ``deadline_s``.

    Call it first thing in a worker script. A daemon thread checks every
    ``poll`` seconds whether the process that started the worker (recorded by
    :class:`Workers` in ``DLBOOK_PARENT_PID``) still runs, and ends the worker
    with exit code 3 when it does not, or when ``deadline_s`` seconds passed.
    """
    parent = int(os.environ.get("DLBOOK_PARENT_PID", os.getppid()))
    end = None if deadline_s is None else time.monotonic() + deadline_s

    def watch() -> None:
        while True:
            time.sleep(poll)
            if os.getppid() != parent or (end is not None and time.monotonic() > end):
                sys.stderr.write("worker: parent gone or deadline passed; exiting\n")
                sys.stderr.flush()
                os._exit(3)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()
