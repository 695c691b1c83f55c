"""tests/seeds.py: reading glued numbers and failures from executed notebooks,
summarising a sweep, and one real sweep of a tiny notebook (no TensorFlow)."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import seeds  # noqa: E402


def glue_output(name: str, text: str):
    """A glue output as myst-nb writes it (display=False)."""
    return new_output(
        "display_data",
        data={"application/papermill.record/text/plain": text},
        metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}},
    )


def executed_notebook(error: bool = False):
    cells = [
        new_markdown_cell("# tiny"),
        new_code_cell("glue(...)", outputs=[
            glue_output("gap", "1.06e-07"),
            glue_output("steps", "300"),
            glue_output("pair", "'(1.05, 2.03)'"),
            glue_output("flag", "True"),
            glue_output("np_value", "np.float64(0.25)"),
            new_output("stream", name="stdout", text="gap 1.06e-07\n"),
        ]),
    ]
    if error:
        cells.append(new_code_cell("x = 1\nassert gap < 1e-9, gap", outputs=[new_output(
            "error", ename="AssertionError", evalue="1.06e-07",
            traceback=["\x1b[0;31m---------\x1b[0m",
                       "Cell \x1b[0;32mIn[3], line 2\x1b[0m\n\x1b[1;32m      1\x1b[0m x = 1\n"
                       "\x1b[0;32m----> 2\x1b[0m \x1b[38;5;28;01massert\x1b[39;00m gap < 1e-9, gap\n",
                       "\x1b[0;31mAssertionError\x1b[0m: 1.06e-07"])]))
    return new_notebook(cells=cells)


@pytest.mark.parametrize("text, number", [
    ("1.5", 1.5), ("300", 300.0), ("-2e-06", -2e-06), ("np.float64(0.25)", 0.25), ("nan", None),
    ("'a string'", None), ("True", None), ("(1, 2)", None),
])
def test_as_number(text, number):
    got = seeds.as_number(text)
    if number is None and text != "nan":
        assert got is None
    elif text == "nan":
        assert got is not None and math.isnan(got)
    else:
        assert got == number


def test_glued_numbers_keeps_numbers_only_in_order():
    values = seeds.glued_numbers(executed_notebook())
    assert list(values) == ["gap", "steps", "np_value"]
    assert values == {"gap": 1.06e-07, "steps": 300.0, "np_value": 0.25}


def test_failure_message_names_the_error_and_the_failing_line():
    assert seeds.failure_message(executed_notebook()) == ""
    message = seeds.failure_message(executed_notebook(error=True))
    assert message == "AssertionError: 1.06e-07 [assert gap < 1e-9, gap]"


def test_summarize_and_report():
    runs = [
        seeds.Run(1234, True, 10.0, {"gap": 1e-7, "acc": 0.9}),
        seeds.Run(1235, True, 12.0, {"gap": 3e-7, "acc": 0.8}),
        seeds.Run(1236, False, 11.0, {"gap": math.inf}, "AssertionError: inf [assert gap < 1]"),
    ]
    rows = seeds.summarize(runs)
    assert [r[0] for r in rows] == ["gap", "acc"]
    name, count, mean, low, high = rows[0]
    assert count == 2 and mean == pytest.approx(2e-7) and (low, high) == (1e-7, 3e-7)
    assert rows[1][1:] == (2, pytest.approx(0.85), 0.8, 0.9)
    text = seeds.report(runs, "tiny")
    assert "passed 2/3 (67%)" in text
    assert "seed 1236 FAILED: AssertionError: inf [assert gap < 1]" in text
    assert "mean 11 s, min 10 s, max 12 s" in text


def test_write_csv_one_row_per_seed_and_figure(tmp_path):
    runs = [seeds.Run(1, True, 1.0, {"a": 0.5, "b": 2.0}), seeds.Run(2, False, 1.5, {}, "boom")]
    path = seeds.write_csv(tmp_path / "x" / "ch-smoke.csv", runs, "ch", "smoke", "tensorflow")
    rows = list(csv.DictReader(path.open()))
    assert [(r["seed"], r["figure"], r["value"], r["passed"]) for r in rows] == [
        ("1", "a", "0.5", "1"), ("1", "b", "2.0", "1"), ("2", "", "", "0")]
    assert rows[2]["message"] == "boom"
    assert seeds.csv_path("ch", "cpu", "tensorflow").name == "ch-cpu.csv"
    assert seeds.csv_path("ch", "cpu", "jax").name == "ch-cpu-jax.csv"


def test_execute_passes_the_seed_and_profile_to_the_kernel(tmp_path):
    """A real kernel: the notebook reads DLBOOK_SEED and fails for odd seeds."""
    nb = new_notebook(cells=[new_code_cell(
        "import os\nfrom myst_nb import glue\n"
        "seed = int(os.environ['DLBOOK_SEED'])\n"
        "glue('seed_half', seed / 2)\n"
        "assert os.environ['DLBOOK_PROFILE'] == 'smoke'\n"
        "assert seed % 2 == 0, f'odd seed {seed}'"
    )])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    runs = []
    for seed in (10, 11):
        path = tmp_path / f"tiny-{seed}.ipynb"
        nbformat.write(nb, path)
        runs.append(seeds.execute(path, seed, "smoke", "tensorflow", timeout=60))
    assert [r.passed for r in runs] == [True, False]
    assert [r.figures for r in runs] == [{"seed_half": 5.0}, {"seed_half": 5.5}]
    assert runs[1].message.startswith("AssertionError: odd seed 11 [")


def test_summary_keeps_the_figures_that_vary_with_the_seed(tmp_path):
    runs = [seeds.Run(1, True, 10.0, {"same": 2.0, "acc": 0.9}), seeds.Run(2, False, 20.0, {"same": 2.0, "acc": 0.8}, "boom")]
    seeds.write_csv(tmp_path / "ch-smoke.csv", runs, "ch", "smoke", "tensorflow")
    seeds.write_csv(tmp_path / "flat-cpu.csv", [seeds.Run(5, True, 1.0, {"x": 1.0})], "flat", "cpu", "tensorflow")
    rows = list(csv.DictReader(seeds.write_summary(tmp_path).open()))
    assert [(r["chapter"], r["figure"]) for r in rows] == [("ch", "acc"), ("flat", "(no figure varied)")]
    assert rows[0]["passed"] == "1/2" and rows[0]["seeds"] == "1-2" and rows[0]["min"] == "0.8"
    assert seeds.read_runs(tmp_path / "ch-smoke.csv")[3][1].message == "boom"
