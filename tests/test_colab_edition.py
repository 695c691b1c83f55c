"""The Colab edition's converter: plain Markdown out, nothing of MyST left."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import colab_edition as ce  # noqa: E402
import harness  # noqa: E402

SOURCES = harness.chapter_sources()
IDS = [md.stem for md in SOURCES]


def convert(text: str, values=None, equations=None) -> str:
    return ce.Converter(values, equations or {}).convert(text)


def test_glue_becomes_the_site_value_formatted_and_marked():
    text = "accuracy {glue:text}`acc:.2f` of {glue:text}`n:,` images, {glue:text}`name`."
    out = convert(text, {"acc": "0.98765", "n": "12000", "name": "'resnet'"})
    assert out == f"accuracy 0.99{ce.MARK} of 12,000{ce.MARK} images, resnet{ce.MARK}."


def test_glue_without_a_run_points_at_the_output():
    assert convert("loss {glue:text}`loss:.3f`.") == "loss (the value printed above)."


def test_labelled_equations_are_tagged_and_referenced_by_number():
    text = "$$\na = b\n$$ (eq-01-a)\n\nand {eq}`eq-01-b` then {eq}`eq-01-a`\n\n$$\nc\n$$ (eq-01-b)"
    numbers = ce.equation_numbers([text])
    assert numbers == {"eq-01-a": 1, "eq-01-b": 2}
    out = convert(text, equations=numbers)
    assert "$$\na = b\n\\tag{1}\n$$" in out and "and (2) then (1)" in out
    assert not ce.RAW_MYST.search(out)


def test_admonitions_become_quotes_and_solutions_fold():
    text = (
        "```{admonition} Pitfall: a trap\n:class: warning\nBody with {glue:text}`x:.1f`.\n```\n\n"
        "```{exercise} Try it\n:label: ex-a\nDo this.\n```\n\n"
        "```{solution} ex-a\n:class: dropdown\nLike that.\n```"
    )
    out = convert(text, {"x": "2.25"})
    assert out.startswith("> **Pitfall: a trap**\n>\n> Body with 2.2")
    assert "### Exercise 1: Try it\n\nDo this." in out
    assert "<details>\n<summary>Solution to exercise 1</summary>\n\nLike that.\n\n</details>" in out


def test_an_unknown_directive_fails_loudly():
    with pytest.raises(ce.ConversionError):
        convert("```{figure} x.png\n```")


def test_the_run_note_is_left_to_the_header():
    assert convert("```{note}\n:class: dlbook-run\nExecuted in {glue:text}`dlbook_profile`.\n```") == ""


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_colab_notebook_has_no_raw_myst_and_asks_for_what_it_needs(md: Path):
    nb = ce.colab_notebook(md, None, "https://example.org/book")
    assert ce.raw_myst(nb) == [], f"{md.name}: raw MyST in the Colab edition"
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == ce.PROFILE_CELL, "the first cell picks the profile"
    assert code[1].source.startswith("# Colab, or a notebook opened on its own"), "then the bootstrap"
    gpu = harness.front_matter(md)["dlbook"]["accelerator"] == "GPU"
    assert (nb.metadata.get("accelerator") == "GPU") == gpu
    assert (nb.metadata["colab"].get("gpuType") == "T4") == gpu
    assert ce.colab_notebook(md, None, "https://example.org/book") == nb, "generation is deterministic"


def test_executed_values_reach_the_colab_text():
    md = next(m for m in SOURCES if m.stem.startswith("01"))
    import jupytext

    keys = set(ce.GLUE_ROLE.findall(md.read_text()))
    outputs = [nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": "0.5"},
                                      metadata={"scrapbook": {"name": k}}) for k, _ in keys]
    outputs += [nbformat.v4.new_output("display_data", data={"text/plain": repr(v)},
                                       metadata={"scrapbook": {"name": k}})
                for k, v in {"dlbook_profile": "cpu", "dlbook_device": "CPU (x86_64, 2 cores)"}.items()]
    executed = jupytext.read(md)
    executed.cells.append(nbformat.v4.new_code_cell("", outputs=outputs))
    nb = ce.colab_notebook(md, executed, "https://example.org/book")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "(the value printed above)" not in text
    assert "profile `cpu` on CPU (x86_64, 2 cores)" in text
