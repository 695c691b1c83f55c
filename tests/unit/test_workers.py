import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from dlbook import workers
from dlbook.workers import WorkerError, WorkerResult, Workers, free_ports, port_is_free

PY = sys.executable


def test_free_ports_are_distinct_and_free():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    assert all(port_is_free(p) for p in ports)
    with pytest.raises(ValueError):
        free_ports(0)


def test_port_is_free_sees_a_listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        assert not port_is_free(port)
    finally:
        s.close()
    assert port_is_free(port)


def test_workers_collect_output_and_exit_codes(tmp_path):
    with Workers(timeout=60, cwd=tmp_path) as group:
        group.start("a", [PY, "-c", "import os; print('hi', os.environ['X'])"], env={"X": "7"})
        group.start("b", [PY, "-c", "import sys; sys.stderr.write('err'); sys.exit(4)"])
        results = group.wait(expect={"b": 4})
    assert results["a"].returncode == 0 and results["a"].stdout.strip() == "hi 7"
    assert results["b"].returncode == 4 and results["b"].stderr == "err"
    assert group.leftovers() == []
    assert not group._logdir.exists()  # output lives on in the results only


def test_a_failing_worker_stops_the_others():
    group = Workers(timeout=60, grace=1)
    with group:
        group.start("sleeper", [PY, "-c", "import time; time.sleep(60)"])
        group.start("crasher", [PY, "-c", "raise SystemExit(2)"])
        start = time.monotonic()
        with pytest.raises(WorkerError, match="crasher exited with code 2"):
            group.wait()
        assert time.monotonic() - start < 30
    assert group.leftovers() == []


def test_timeout_stops_everything_including_children(tmp_path):
    # The worker starts a grandchild; both must be gone after the timeout.
    code = textwrap.dedent(
        """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    group = Workers(timeout=3, grace=1)
    with pytest.raises(WorkerError, match="still running"):
        with group:
            group.start("parent", [PY, "-c", code])
            group.wait()
    assert group.leftovers() == []
    grandchild = int(group._results["parent"].stdout.split()[0])
    assert not _alive(grandchild)


def test_an_exception_in_the_block_stops_the_workers():
    group = Workers(timeout=60, grace=1)
    with pytest.raises(KeyError):
        with group:
            group.start("sleeper", [PY, "-c", "import time; time.sleep(60)"])
            raise KeyError("a failing cell")
    assert group.leftovers() == []


def test_a_worker_that_ignores_sigterm_is_killed():
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    group = Workers(timeout=60, grace=0.5)
    with group:
        group.start("stubborn", [PY, "-c", code])
        time.sleep(1.0)
    assert group.leftovers() == []
    assert group._results["stubborn"].returncode == -signal.SIGKILL


def test_duplicate_names_and_bad_timeout_are_rejected():
    with pytest.raises(ValueError):
        Workers(timeout=0)
    with Workers(timeout=10) as group:
        group.start("a", [PY, "-c", "pass"])
        with pytest.raises(ValueError):
            group.start("a", [PY, "-c", "pass"])
        group.wait()


def test_follow_parent_ends_a_worker_past_its_deadline():
    code = "from dlbook.workers import follow_parent; import time; follow_parent(deadline_s=0.5, poll=0.1); time.sleep(30)"
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.returncode == 3 and "deadline" in out.stderr


def test_follow_parent_ends_an_orphaned_worker(tmp_path):
    # A middle process starts a worker and exits at once: the worker must notice.
    pid_file = tmp_path / "pid"
    worker = (
        "from dlbook.workers import follow_parent; import os, time, pathlib; "
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); "
        "follow_parent(poll=0.1); time.sleep(30)"
    )
    middle = (
        "import subprocess, sys, os; "
        f"subprocess.Popen([sys.executable, '-c', {worker!r}], env=dict(os.environ, DLBOOK_PARENT_PID=str(os.getpid())))"
        "; import time; time.sleep(2)"
    )
    subprocess.run([PY, "-c", middle], timeout=30, check=True)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), "the orphaned worker is still running"


def _alive(pid):
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_tail_keeps_the_fatal_line_above_a_long_stack_trace():
    stack = [f"    @     0x{i:012x}  frame_{i}()" for i in range(40)]
    err = "\n".join(["starting", "F1206 01:17:33.123456   42 collectives.cc:88] Check failed: rendezvous timed out",
                     "*** Check failure stack trace: ***", *stack])
    text = WorkerResult("w", -6, "epoch 1\n", err, 1.0).tail(lines=15)
    lines = text.splitlines()
    assert lines[0].startswith("F1206") and "rendezvous timed out" in lines[0]
    assert lines[-1] == stack[-1] and len(lines) == 17  # the cause, a gap marker, the last 15 lines


def test_tail_is_unchanged_without_a_fatal_line():
    out = "\n".join(f"line {i}" for i in range(30))
    assert WorkerResult("w", 1, out, "", 1.0).tail(lines=5) == "\n".join(f"line {i}" for i in range(25, 30))


def _flaky_script(tmp_path, fails: int, message: str) -> list[str]:
    """A worker that fails its first `fails` runs with `message` on stderr (a counter file keeps the count)."""
    script = tmp_path / "flaky.py"
    script.write_text(textwrap.dedent(f"""
        import pathlib, sys
        counter = pathlib.Path({str(tmp_path / 'runs')!r})
        n = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(n))
        if n <= {fails}:
            sys.stderr.write({message!r} + "\\n")
            sys.exit(3)
        print("done on run", n)
    """))
    return [PY, str(script)]


def test_run_alone_retries_the_xla_rendezvous_timeout(tmp_path):
    said = []
    argv = _flaky_script(tmp_path, 2, "F1206 rendezvous.cc:161] Termination timeout for `all reduce`")
    result = workers.run_alone("w", argv, cwd=tmp_path, timeout=60, attempts=3, log=said.append)
    assert result.returncode == 0 and "done on run 3" in result.stdout
    assert len(said) == 2 and "rendezvous timeout" in said[0]


def test_run_alone_gives_up_after_its_attempts_and_on_other_errors(tmp_path):
    argv = _flaky_script(tmp_path, 5, "F1206 rendezvous.cc:161] Termination timeout for `all reduce`")
    with pytest.raises(WorkerError, match="Termination timeout"):
        workers.run_alone("w", argv, cwd=tmp_path, timeout=60, attempts=2, log=lambda _: None)
    assert (tmp_path / "runs").read_text() == "2"
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(WorkerError, match="some other failure"):
        workers.run_alone("w", _flaky_script(other, 1, "some other failure"), cwd=other, timeout=60,
                          log=lambda _: None)
    assert (other / "runs").read_text() == "1"  # not retried
