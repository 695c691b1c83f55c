"""dlbook.devices, dlbook.runtime and dlbook.report: quiet start-up, seeds, the
banner and run facts, tables, glue and source on the page (plots: test_plots.py)."""

import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlbook import devices, runtime  # noqa: E402
from dlbook.profiles import Profile  # noqa: E402


def test_import_sets_quiet_logging_defaults():
    code = "import os; os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None); import dlbook; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "3"


def test_muted_stderr_silences_fd2(capfd):
    with devices.muted_stderr():
        os.write(2, b"native noise\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "native noise" not in err and "after" in err


def test_seed_everything_is_reproducible():
    runtime.seed_everything(3)
    a = np.random.rand(3)
    runtime.seed_everything(3)
    assert np.array_equal(a, np.random.rand(3))


def test_banner_names_profile_backend_and_versions():
    line = runtime.banner(Profile("smoke", 5))
    assert "profile smoke" in line and "seed 5" in line and "Keras" in line and "numpy" in line
    assert "\n" not in line


def test_check_versions_flags_old_packages():
    assert runtime.check_versions({"keras": "2.15.0", "numpy": "2.0"}) == [
        "keras 2.15.0 is older than the 3.13 this book needs"
    ]
    assert runtime.check_versions({"keras": "3.15.1"}) == []


def test_setup_rejects_an_undeclared_backend(monkeypatch):
    monkeypatch.setattr(runtime, "import_backend", lambda: "torch")
    with pytest.raises(RuntimeError, match="KERAS_BACKEND"):
        runtime.setup(backends=("tensorflow", "jax"), quiet=True)


def test_markdown_table():
    from dlbook.report import markdown_table

    text = markdown_table(["a", "b"], [[1, 0.5], ["x", 1e-7]], digits=3)
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.500 |", "| x | 1e-07 |"]
    with pytest.raises(ValueError):
        markdown_table(["a"], [[1, 2]])
    piped = markdown_table(["max |a - b|"], [["x|y"]])
    assert piped.splitlines() == ["| max \\|a - b\\| |", "|---|", "| x\\|y |"]


def test_glue_adds_no_output_value():
    from dlbook.report import glue

    assert glue("unit_test_value", 1.5) is None


def test_show_source_displays_dedented_python(monkeypatch):
    import IPython.display

    from dlbook import report

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    report.show_source(report.markdown_table)
    report.show_source(IPython.display.Markdown.__init__)  # a method: indented in its file
    first, method = (m.data for m in shown)
    assert first.startswith("```python\ndef markdown_table(") and first.endswith("```")
    assert method.startswith("```python\ndef __init__(")


def test_run_facts_name_the_profile_device_and_versions():
    from dlbook.profiles import Profile

    facts = runtime.run_facts(Profile("smoke", seed=7))
    assert facts["dlbook_profile"] == "smoke" and facts["dlbook_seed"] == "7"
    assert facts["dlbook_device"] == devices.device_description()
    assert set(facts) == {"dlbook_profile", "dlbook_device", "dlbook_keras", "dlbook_backend",
                          "dlbook_seed", "dlbook_date"}


def test_run_facts_are_not_glued_outside_a_kernel(capsys):
    from dlbook.profiles import Profile

    runtime.glue_run_facts(Profile("smoke"))
    assert capsys.readouterr().out == ""


def test_native_log_lines_are_recognised():
    drop = devices.drop_native_logs
    assert drop(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert drop(b"I0000 00:00:1796427330.187025   24711 device_compiler.h:196] Compiled cluster using XLA!")
    assert drop(b"E0000 00:00:1796427114.541658   22892 meta_optimizer.cc:967] remapper failed: x")
    assert not drop(b"F0000 00:00:1.2 1 x.cc:1] fatal: kept")
    assert not drop(b"Traceback (most recent call last):")
    assert not drop(b"downloading mnist/mnist.npz (11.5 MB): 0% 10%")


def test_filter_native_logs_drops_them_from_fd2_only():
    code = (
        "import os, sys, time\n"
        "from dlbook import devices\n"
        "assert devices.filter_native_logs()\n"
        "os.write(2, b'I0000 00:00:1.5 7 device_compiler.h:196] Compiled cluster using XLA!\\n')\n"
        "os.write(2, b'a real problem\\n')\n"
        "print('to stdout', flush=True)\n"
        "time.sleep(0.5)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "a real problem\n" and proc.stdout == "to stdout\n"
