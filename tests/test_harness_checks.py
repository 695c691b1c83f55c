"""The harness's checks of an executed chapter, on small synthetic notebooks:
page_problems (stderr, log lines, glue references) and execution_seconds."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def stream(text: str, name: str = "stdout"):
    return new_output("stream", name=name, text=text)


def glued(name: str, value: str):
    """A display output as myst-nb's glue() writes it: the value under a papermill.record mime type."""
    return new_output(
        "display_data",
        data={"application/papermill.record/text/plain": value},
        metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}},
    )


def notebook(*outputs_per_cell, markdown: str = "# A chapter"):
    cells = [new_markdown_cell(markdown)]
    for outputs in outputs_per_cell:
        cells.append(new_code_cell("pass", outputs=list(outputs), execution_count=len(cells)))
    nb = new_notebook(cells=cells)
    nbformat.validate(nb)
    return nb


@pytest.fixture
def page(tmp_path):
    """Write a chapter source with the given prose; return its path."""

    def write(prose: str = "No glue here.") -> Path:
        md = tmp_path / "01_chapter.md"
        md.write_text(prose, encoding="utf-8")
        return md

    return write


# ---------------------------------------------------------------------------
# page_problems: output streams


def test_a_clean_chapter_has_no_problems(page):
    nb = notebook([stream("accuracy 0.97\n")], [glued("acc", "0.97")])
    assert harness.page_problems(page("Accuracy {glue:text}`acc:.2f`."), nb) == []


def test_any_stderr_output_is_a_problem(page):
    problems = harness.page_problems(page(), notebook([stream("a warning\n", name="stderr")]))
    assert len(problems) == 1 and problems[0].startswith("stderr output: 'a warning")


@pytest.mark.parametrize("line", [
    "I0000 00:00:1718000000.123456   12345 cuda_executor.cc:1015] successful NUMA node read\n",
    "W0000 00:00:1718000000.1 1 gpu_timer.cc:114] Skipping the delay kernel\n",
    "E0000 00:00:1718000000.1 1 cuda_dnn.cc:8310] Unable to register cuDNN factory\n",
    "oneDNN custom operations are on. You may see slightly different numerical results\n",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "12/100 [==>...........................] - ETA: 3s - loss: 0.4\n",
    "157/157 [==============================] 2s 9ms/step\n",
    "ETA: 12s\n",
])
def test_log_lines_and_progress_bars_in_stdout_are_problems(page, line):
    problems = harness.page_problems(page(), notebook([stream("before\n" + line)]))
    assert len(problems) == 1 and problems[0].startswith("log line or progress bar in stdout")


def test_ordinary_stdout_is_not_a_log_line(page):
    text = "epoch 10000 of 10000; 3/4 of the data; ETA unknown\nstep 1/10 done\n"
    assert harness.page_problems(page(), notebook([stream(text)])) == []


def test_markdown_cells_are_not_checked(page):
    nb = notebook(markdown="I0000 in prose is not an output")
    assert harness.page_problems(page(), nb) == []


def test_each_bad_output_is_reported(page):
    nb = notebook([stream("x\n", name="stderr"), stream("I0000 00:00:1.0 1 a.cc:1] y\n")],
                  [stream("z\n", name="stderr")])
    assert len(harness.page_problems(page(), nb)) == 3


def test_the_log_patterns_are_shared_with_the_site_check():
    for pattern in harness.LOG_PATTERNS:
        assert pattern in harness.PAGE_LOG_PATTERNS
        re.compile(pattern)
    assert harness.LOG_LINES.pattern == "|".join(harness.LOG_PATTERNS)


# ---------------------------------------------------------------------------
# page_problems: glue references


def test_a_glue_reference_without_a_glue_call_is_a_problem(page):
    md = page("We reach {glue:text}`acc:.1%` after {glue}`epochs` epochs.")
    problems = harness.page_problems(md, notebook([glued("acc", "0.9")]))
    assert problems == ["{glue} reference 'epochs' has no glue() call that ran"]


@pytest.mark.parametrize("role", ["{glue}", "{glue:text}", "{glue:md}", "{glue:any}", "{glue:figure}"])
def test_every_glue_role_is_checked(page, role):
    problems = harness.page_problems(page(f"See {role}`missing_key`."), notebook())
    assert problems == ["{glue} reference 'missing_key' has no glue() call that ran"]


@pytest.mark.parametrize("fmt", [".3f", ".1%", ".2e", ".0d", ",.0f", ".3g"])
def test_a_number_format_needs_a_numeric_value(page, fmt):
    md = page(f"Loss {{glue:text}}`loss:{fmt}`.")
    assert harness.page_problems(md, notebook([glued("loss", "1.25")])) == []
    problems = harness.page_problems(md, notebook([glued("loss", "'cpu'")]))
    assert problems == [f"glued 'loss' = \"'cpu'\" cannot take the number format {fmt!r}"]


def test_a_text_value_without_a_number_format_is_fine(page):
    md = page("Run on {glue:text}`dlbook_device` with {glue:text}`dlbook_profile:s`.")
    nb = notebook([glued("dlbook_device", "'CPU (x86_64, 2 cores)'"), glued("dlbook_profile", "'smoke'")])
    assert harness.page_problems(md, nb) == []


def test_glue_in_any_cell_counts(page):
    md = page("{glue:text}`a` and {glue:text}`b:.2f`")
    nb = notebook([glued("a", "'x'")], [stream("noise-free\n"), glued("b", "2.5")])
    assert harness.page_problems(md, nb) == []


# ---------------------------------------------------------------------------
# execution_seconds


def timed(cell, start: str | None, end: str | None):
    execution = {}
    if start:
        execution["iopub.execute_input"] = start
    if end:
        execution["shell.execute_reply"] = end
    cell.metadata["execution"] = execution
    return cell


def test_execution_seconds_spans_the_first_start_to_the_last_reply():
    nb = notebook([], [], [])
    code = [c for c in nb.cells if c.cell_type == "code"]
    timed(code[0], "2025-01-01T10:00:00.000000Z", "2025-01-01T10:00:01.500000Z")
    timed(code[1], "2025-01-01T10:00:02.000000Z", "2025-01-01T10:01:00.250000Z")
    timed(code[2], "2025-01-01T10:01:00.300000Z", "2025-01-01T10:01:05.000000Z")
    assert harness.execution_seconds(nb) == pytest.approx(65.0)


def test_execution_seconds_takes_the_earliest_start_and_latest_end_in_any_order():
    nb = notebook([], [])
    code = [c for c in nb.cells if c.cell_type == "code"]
    timed(code[0], "2025-01-01T10:00:05+00:00", "2025-01-01T10:00:06+00:00")
    timed(code[1], "2025-01-01T10:00:00+00:00", "2025-01-01T10:00:03+00:00")
    assert harness.execution_seconds(nb) == pytest.approx(6.0)


def test_execution_seconds_ignores_markdown_and_untimed_cells():
    nb = notebook([], [])
    nb.cells[0].metadata["execution"] = {"iopub.execute_input": "2000-01-01T00:00:00Z"}  # a markdown cell
    code = [c for c in nb.cells if c.cell_type == "code"]
    timed(code[1], "2025-01-01T10:00:00Z", "2025-01-01T10:00:02Z")
    assert harness.execution_seconds(nb) == pytest.approx(2.0)


def test_execution_seconds_is_none_without_timing_metadata():
    assert harness.execution_seconds(notebook([], [])) is None
    nb = notebook([])
    timed(nb.cells[1], "2025-01-01T10:00:00Z", None)  # started, never replied
    assert harness.execution_seconds(nb) is None
