"""dlbook.bench: the command line and thread settings (the benchmark itself is not a timed test)."""

import os
import subprocess
import sys

from dlbook import bench


def test_set_threads(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "")
    bench.set_threads(1)
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in os.environ["XLA_FLAGS"]
    monkeypatch.setenv("XLA_FLAGS", "")
    bench.set_threads(2)
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "2"
    assert os.environ["XLA_FLAGS"] == ""  # XLA takes no thread count above one: every token must start "--"


def test_help_names_the_gpt_benchmark():
    out = subprocess.run([sys.executable, "-m", "dlbook.bench", "--help"], capture_output=True, text=True, check=True)
    assert "gpt" in out.stdout
