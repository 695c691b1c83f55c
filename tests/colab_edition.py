"""The Colab edition: one notebook per chapter, generated, never hand-edited.

Colab renders plain Markdown: MyST roles and directives (``{glue:text}``,
``{exercise}``, admonitions, labelled equations) would show as literal text.
This module turns each chapter's MyST source into a notebook Colab reads
cleanly, and publishes the helper package beside the site:

* glue roles become the value the site build computed, marked with a dagger
  (the header cell says which profile and device computed them), or, where no
  executed copy is at hand, a phrase pointing at the output above;
* admonitions become block quotes, exercises headed sections, solutions folded
  ``<details>``; labelled equations carry ``\\tag{n}`` and ``{eq}`` references
  become ``(n)``, numbered as the site numbers them;
* a GPU chapter asks Colab for one (top-level ``accelerator``, ``colab.gpuType``);
* a first cell lets the reader pick the run profile.

Usage (``make book`` and ``make test`` run it after the site is built)::

    python tests/colab_edition.py build   # wheel -> _build/html/_static/, notebooks -> _build/html/colab/

The launch buttons open ``<repo>/blob/gh-pages/colab/chapters/<page>.ipynb``
(``_config.yml``'s ``repository.branch`` and ``path_to_book``): the notebooks
reach GitHub when the built site is pushed to the ``gh-pages`` branch.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

ROOT = harness.ROOT
HTML = ROOT / "_build" / "html"
PUBLISHED_BRANCH = "gh-pages"
FOLDER = "colab"
"""Where the Colab notebooks live inside the site (and so in the gh-pages branch)."""
EXECUTED_DIRS = (ROOT / "_build" / "jupyter_execute" / "chapters", ROOT / "_nbexec" / "tensorflow")
"""Where executed chapters are looked for, in order: the site build's, then nbmake's."""
MARK = "<sup>†</sup>"

GLUE_ROLE = re.compile(r"\{glue(?::text|:md|:any|)\}`([A-Za-z0-9_]+)(?::([^`]*))?`")
EQ_ROLE = re.compile(r"\{eq\}`([A-Za-z0-9_-]+)`")
EQ_LABEL = re.compile(r"^\$\$\s*\((eq-[A-Za-z0-9_-]+)\)\s*$")
FENCE_OPEN = re.compile(r"^(`{3,}|:{3,})\{([a-z:-]+)\}\s*(.*)$")
RAW_MYST = re.compile(r"\{[a-z][a-z:-]*\}`|^(`{3,}|:{3,})\{|^\$\$\s*\(eq-|^\([A-Za-z0-9_-]+\)=\s*$", re.M)
"""Anything of MyST that Colab would show as literal text: a role, a directive,
an equation label or a target."""


class ConversionError(ValueError):
    """The chapter uses MyST this converter does not know how to turn into Markdown."""


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def site_url() -> str:
    """The published site's address (``html.baseurl`` of ``_config.yml``), no trailing slash."""
    return config()["html"]["baseurl"].rstrip("/")


def glued_values(executed) -> dict[str, str]:
    """The ``text/plain`` of every value a chapter glued, from its executed notebook."""
    values = {}
    for cell in executed.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:  # myst-nb keeps glued data under papermill's record mime types
                data = out.get("data", {})
                values[name] = data.get("application/papermill.record/text/plain", data.get("text/plain", ""))
    return values


def format_glued(text: str, fmt: str) -> str:
    """Format a glued ``text/plain`` value as myst-nb's ``{glue:text}`` does."""
    from myst_nb.core.variables import format_plain_text

    return format_plain_text(text, fmt)


def equation_numbers(markdown_sources: list[str]) -> dict[str, int]:
    """Number a chapter's labelled equations in order, as the site numbers them."""
    numbers: dict[str, int] = {}
    for source in markdown_sources:
        for line in source.splitlines():
            match = EQ_LABEL.match(line.strip())
            if match and match.group(1) not in numbers:
                numbers[match.group(1)] = len(numbers) + 1
    return numbers


class Converter:
    """Turns one chapter's MyST markdown cells into plain (Colab) Markdown."""

    def __init__(self, values: dict[str, str] | None, equations: dict[str, int]):
        self.values = values
        self.equations = equations
        self.exercises: dict[str, int] = {}

    # -- inline -------------------------------------------------------------
    def glue(self, match: re.Match) -> str:
        key, fmt = match.group(1), match.group(2) or ""
        if self.values is None or key not in self.values:
            return "(the value printed above)"
        return format_glued(self.values[key], fmt) + MARK

    def equation(self, match: re.Match) -> str:
        label = match.group(1)
        if label not in self.equations:
            raise ConversionError(f"{{eq}} reference to unknown label {label!r}")
        return f"({self.equations[label]})"

    def inline(self, text: str) -> str:
        text = GLUE_ROLE.sub(self.glue, text)
        return EQ_ROLE.sub(self.equation, text)

    # -- blocks -------------------------------------------------------------
    def convert(self, text: str) -> str:
        """Convert a markdown cell; raise :class:`ConversionError` on unknown MyST."""
        lines = text.splitlines()
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            match = FENCE_OPEN.match(line)
            if match:
                fence, name, argument = match.groups()
                end = i + 1
                while end < len(lines) and not (
                    lines[end].strip().startswith(fence[0] * len(fence))
                    and set(lines[end].strip()) == {fence[0]}
                ):
                    end += 1
                if end == len(lines):
                    raise ConversionError(f"directive {{{name}}} is not closed")
                options, body = self._split_options(lines[i + 1 : end])
                out.append(self.directive(name, argument.strip(), options, self.convert("\n".join(body))))
                i = end + 1
                continue
            label = EQ_LABEL.match(line.strip())
            if label:
                # closing $$ of a labelled display equation: number it as the site does
                out.append(f"\\tag{{{self.equations[label.group(1)]}}}")
                out.append("$$")
                i += 1
                continue
            out.append(self.inline(line))
            i += 1
        return "\n".join(out)

    @staticmethod
    def _split_options(lines: list[str]) -> tuple[dict[str, str], list[str]]:
        options: dict[str, str] = {}
        k = 0
        while k < len(lines) and re.match(r"^:[a-z-]+:", lines[k]):
            key, _, value = lines[k][1:].partition(":")
            options[key] = value.strip()
            k += 1
        return options, lines[k:]

    def directive(self, name: str, argument: str, options: dict[str, str], body: str) -> str:
        handler: Callable[[str, dict[str, str], str], str] | None = {
            "admonition": self._admonition,
            "note": lambda a, o, b: self._quote("Note", b),
            "warning": lambda a, o, b: self._quote("Warning", b),
            "tip": lambda a, o, b: self._quote("Tip", b),
            "important": lambda a, o, b: self._quote("Important", b),
            "exercise": self._exercise,
            "solution": self._solution,
        }.get(name)
        if handler is None:
            raise ConversionError(f"no Colab form for the directive {{{name}}}")
        if "dlbook-run" in options.get("class", ""):
            return ""  # the site run's facts: the header cell states them for Colab
        return handler(argument, options, body)

    @staticmethod
    def _quote(title: str, body: str) -> str:
        quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
        return f"> **{title}**\n>\n{quoted}"

    def _admonition(self, argument: str, options: dict[str, str], body: str) -> str:
        title = self.inline(argument) or "Note"
        if "warning" in options.get("class", "") and not title.lower().startswith(("pitfall", "warning")):
            title = f"Warning: {title}"
        return self._quote(title, body)

    def _exercise(self, argument: str, options: dict[str, str], body: str) -> str:
        number = len(self.exercises) + 1
        if "label" in options:
            self.exercises[options["label"]] = number
        title = f": {self.inline(argument)}" if argument else ""
        return f"### Exercise {number}{title}\n\n{body}"

    def _solution(self, argument: str, options: dict[str, str], body: str) -> str:
        number = self.exercises.get(argument)
        if number is None:
            raise ConversionError(f"solution to unknown exercise {argument!r}")
        return f"<details>\n<summary>Solution to exercise {number}</summary>\n\n{body}\n\n</details>"


PROFILE_CELL = '''#@title Run profile { display-mode: "form" }
#@markdown `auto` runs the `gpu` profile when a GPU is visible, else `cpu`.
#@markdown `cpu` gives real results in minutes; `gpu` is the full-quality run;
#@markdown `smoke` only checks that the code runs (seconds, meaningless numbers).
PROFILE = "auto"  #@param ["auto", "gpu", "cpu", "smoke"]
import os
if PROFILE != "auto":
    os.environ["DLBOOK_PROFILE"] = PROFILE'''


def header_cell(stem: str, info: dict, values: dict[str, str] | None, site: str) -> str:
    """The note that opens a Colab notebook: where it comes from and what † means."""
    page = f"{site}/chapters/{stem}.html"
    lines = [
        f"> **The Colab edition** of a chapter of *Deep Learning, Worked*, generated from the book's "
        f"source. The rendered chapter is at <{page}>.",
        ">",
    ]
    if values and "dlbook_profile" in values:
        facts = {k: format_glued(values[k], "") for k in values if k.startswith("dlbook_")}
        lines.append(
            f"> Numbers marked {MARK} in the text are those of the site's own run (profile "
            f"`{facts['dlbook_profile']}` on {facts.get('dlbook_device', '?')}, Keras "
            f"{facts.get('dlbook_keras', '?')} on {facts.get('dlbook_backend', '?')}, seed "
            f"{facts.get('dlbook_seed', '?')}, {facts.get('dlbook_date', '?')}); your run prints "
            f"its own in the outputs, and the checks assert them."
        )
    else:
        lines.append("> Numbers the text quotes are printed by the cells above them when you run the notebook.")
    lines.append(">")
    if info.get("accelerator") == "GPU":
        lines.append("> This chapter asks Colab for a GPU (Runtime > Change runtime type shows it). "
                     "Pick a profile in the first cell, then Runtime > Run all.")
    else:
        lines.append("> This chapter needs no GPU. Pick a profile in the first cell, then Runtime > Run all.")
    times = info.get("time", {})
    if times:
        lines.append(">")
        lines.append("> Time: " + "; ".join(f"`{k}` {v}" for k, v in times.items()) + ".")
    return "\n".join(lines)


def colab_notebook(md: Path, executed=None, site: str | None = None):
    """The Colab edition of one chapter (an nbformat notebook).

    Args:
        md: the chapter's MyST source.
        executed: the same chapter executed (its glued values are quoted), or None.
        site: the site's address for links (default: ``_config.yml``).
    """
    import jupytext

    site = site or site_url()
    source = jupytext.read(md)
    info = source.metadata.get("dlbook", {})
    values = glued_values(executed) if executed is not None else None
    markdown = [c.source for c in source.cells if c.cell_type == "markdown"]
    converter = Converter(values, equation_numbers(markdown))
    cells = []
    for cell in source.cells:
        if cell.cell_type == "markdown":
            text = converter.convert(cell.source).strip()
            if text:
                cells.append(nbformat.v4.new_markdown_cell(text))
        elif cell.cell_type == "code":
            cells.append(nbformat.v4.new_code_cell(cell.source))
    title_at = next(i for i, c in enumerate(cells) if c.cell_type == "markdown")
    cells[title_at + 1 : title_at + 1] = [
        nbformat.v4.new_markdown_cell(header_cell(md.stem, info, values, site)),
        nbformat.v4.new_code_cell(PROFILE_CELL, metadata={"cellView": "form"}),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"name": f"{md.stem}.ipynb", "provenance": [], "toc_visible": True},
        "dlbook": copy.deepcopy(info),
    }
    if info.get("accelerator") == "GPU":
        nb.metadata["accelerator"] = "GPU"
        nb.metadata["colab"]["gpuType"] = "T4"
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating changes nothing
        cell["id"] = f"{md.stem[:2]}-{i:03d}"
    return nb


def raw_myst(nb) -> list[str]:
    """Lines of any markdown cell that still hold MyST syntax (should be none)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found += [m.group(0) for m in RAW_MYST.finditer(cell.source)]
    return found


def executed_copy(stem: str):
    """The chapter executed by the site build (or by nbmake), if there is one."""
    for folder in EXECUTED_DIRS:
        path = folder / f"{stem}.ipynb"
        if path.exists():
            nb = nbformat.read(path, as_version=4)
            glue_file = folder / f"{stem}.glue.json"
            if glue_file.exists():  # the site build moves glued outputs out of the notebook
                outputs = [nbformat.from_dict(o) for o in json.loads(glue_file.read_text()).values()]
                nb.cells.append(nbformat.v4.new_code_cell("", outputs=outputs))
            return nb
    return None


def write_notebooks(out: Path = HTML / FOLDER, site: str | None = None, require_executed: bool = True) -> list[Path]:
    """Write every chapter's Colab edition to ``out/chapters/<stem>.ipynb``."""
    written = []
    for md in harness.chapter_sources():
        executed = executed_copy(md.stem)
        if executed is None and require_executed:
            raise SystemExit(f"no executed copy of {md.stem} in {', '.join(map(str, EXECUTED_DIRS))}: build the site first")
        nb = colab_notebook(md, executed, site)
        leftover = raw_myst(nb)
        if leftover:
            raise SystemExit(f"{md.name}: raw MyST left in the Colab edition: {leftover[:5]}")
        path = out / "chapters" / f"{md.stem}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def project_version() -> str:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def wheel_name(version: str | None = None) -> str:
    return f"dlbook-{version or project_version()}-py3-none-any.whl"


def build_wheel(out: Path = HTML / "_static") -> Path:
    """Build dlbook's wheel into the site's ``_static`` folder (where the bootstrap finds it)."""
    import shutil
    import tempfile

    out.mkdir(parents=True, exist_ok=True)
    # The recorded runs travel in the wheel as package data (dlbook.records reads
    # them in Colab, where there is no checkout): a copy of the one source,
    # results/recorded_runs.csv, made for the build and removed after it.
    shipped = ROOT / "src" / "dlbook" / "_recorded_runs.csv"
    with tempfile.TemporaryDirectory() as tmp:
        uv = Path(sys.executable).parent / "uv"
        if uv.exists():
            cmd = [str(uv), "build", "--wheel", "--quiet", "--out-dir", tmp, str(ROOT)]
        else:  # pragma: no cover - uv is in the test extra
            cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp, str(ROOT)]
        shutil.copyfile(ROOT / "results" / "recorded_runs.csv", shipped)
        try:
            subprocess.run(cmd, check=True, cwd=tmp)
        finally:
            shipped.unlink(missing_ok=True)
        built = Path(tmp) / wheel_name()
        if not built.exists():
            raise SystemExit(f"the wheel build did not produce {built.name}: {sorted(p.name for p in Path(tmp).iterdir())}")
        target = out / built.name
        shutil.copy2(built, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_build = sub.add_parser("build", help="the wheel into _build/html/_static, the notebooks into _build/html/colab")
    p_build.add_argument("--out", type=Path, default=HTML)
    args = parser.parse_args(argv)
    if args.cmd == "build":
        wheel = build_wheel(args.out / "_static")
        print(f"wheel: {wheel.relative_to(ROOT) if wheel.is_relative_to(ROOT) else wheel}")
        for path in write_notebooks(args.out / FOLDER):
            print(f"colab: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
