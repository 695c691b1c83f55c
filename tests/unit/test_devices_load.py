"""devices.OtherPrograms: the cores other programs used while a block ran."""

import os
import subprocess
import sys
import time

import pytest

from dlbook.devices import OtherPrograms, _busy_cpu_seconds

linux = pytest.mark.skipif(_busy_cpu_seconds() is None, reason="reads Linux's /proc/stat")


def test_others_are_the_machine_s_busy_time_less_this_process_s(monkeypatch):
    import dlbook.devices as devices

    clock = {"wall": 10.0, "own": 3.0, "busy": 500.0}
    monkeypatch.setattr(time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(time, "process_time", lambda: clock["own"])
    monkeypatch.setattr(devices, "_busy_cpu_seconds", lambda: clock["busy"])
    with devices.OtherPrograms() as others:
        # 2 s of wall time: this process used 1.5 s of CPU, the machine 4.5 s in all
        clock.update(wall=12.0, own=4.5, busy=504.5)
    assert others.cores == pytest.approx(1.5)  # (4.5 - 1.5) / 2
    with devices.OtherPrograms() as alone:
        clock.update(wall=14.0, own=6.5, busy=506.4)  # a little less than its own: counter granularity
    assert alone.cores == 0.0


@linux
def test_a_busy_neighbour_is_seen():
    spin = "import time\nend = time.perf_counter() + 1.5\nwhile time.perf_counter() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.3)  # the child has started spinning
        with OtherPrograms() as others:
            time.sleep(0.8)
    finally:
        child.wait()
    assert others.cores is not None and others.cores > 0.6, others.cores  # one core, less scheduling noise
    assert others.busy(0.6 / (os.cpu_count() or 1))


def test_unknown_where_the_machine_cannot_be_read(monkeypatch):
    import dlbook.devices as devices

    monkeypatch.setattr(devices, "_busy_cpu_seconds", lambda: None)
    with devices.OtherPrograms() as others:
        pass
    assert others.cores is None and not others.busy(0.0)
