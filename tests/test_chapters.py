"""Static checks of the chapters: pairing, metadata, Colab bootstrap, table of contents."""

from __future__ import annotations

import json
import re
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import jupytext
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

ROOT = harness.ROOT
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
SOURCES = harness.chapter_sources()
IDS = [md.stem for md in SOURCES]

SITE_URL = CONFIG["html"]["baseurl"].rstrip("/")
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

BOOTSTRAP = f'''# Colab, or a notebook opened on its own: install the book's helper package, dlbook,
# at the version this chapter was written for (from the book's site, else its git tag).
DLBOOK_VERSION = "{VERSION}"
try:
    import dlbook
except ImportError:
    import os, subprocess, sys
    site = os.environ.get("DLBOOK_SITE", "{SITE_URL}")
    for source in (f"{{site}}/_static/dlbook-{{DLBOOK_VERSION}}-py3-none-any.whl",
                   f"git+{REPO_URL}@v{{DLBOOK_VERSION}}"):
        if subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"dlbook @ {{source}}"]).returncode == 0:
            break
    import dlbook'''


def code_cells(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"]


def test_there_are_chapters():
    assert SOURCES, "no chapters found"


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_pair_exists_in_sync_and_stripped(md: Path):
    nb_path = md.with_suffix(".ipynb")
    assert nb_path.exists(), f"{md.name} has no paired .ipynb: run `make sync`"
    text_nb = jupytext.read(md)
    ipynb = jupytext.read(nb_path)
    assert code_cells(text_nb) == code_cells(ipynb), f"{md.name} and its .ipynb differ: run `make sync`"
    md_cells = [c.source.strip() for c in text_nb.cells if c.cell_type == "markdown"]
    nb_cells = [c.source.strip() for c in ipynb.cells if c.cell_type == "markdown"]
    assert md_cells == nb_cells, f"{md.name} and its .ipynb differ in prose: run `make sync`"
    raw = json.loads(nb_path.read_text())
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{nb_path.name} has outputs"
    assert raw["metadata"].get("dlbook") == harness.front_matter(md)["dlbook"]


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_chapter_metadata(md: Path):
    meta = harness.front_matter(md)
    assert meta["kernelspec"]["name"] == "python3"
    assert meta["jupytext"]["formats"] == "ipynb,md:myst"
    info = meta["dlbook"]
    assert 0 < len(info["description"]) < 100
    assert info["accelerator"] in ("None", "GPU")
    assert "tensorflow" in info["backends"] and set(info["backends"]) <= set(harness.BACKENDS)
    assert set(info["time"]) == {"smoke", "cpu", "gpu"}
    assert re.fullmatch(r"\d\d_[a-z0-9_]+", md.stem)


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_first_cell_is_the_colab_bootstrap(md: Path):
    nb = jupytext.read(md)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source.strip() == BOOTSTRAP, (
        f"{md.name}: the first code cell must be the bootstrap cell of tests/test_chapters.py, "
        f"installing dlbook {VERSION} (pyproject.toml's version) from {SITE_URL} (_config.yml)"
    )
    assert "hide-output" in first.metadata.get("tags", [])


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_setup_declares_the_backends(md: Path):
    """The Setup cell passes the front matter's backends to dlbook.setup."""
    setup_cell = code_cells(jupytext.read(md))[1]
    match = re.search(r"dlbook\.setup\(backends=(\([^)]*\))", setup_cell)
    assert match, f"{md.name}: the Setup cell must call dlbook.setup(backends=...)"
    import ast

    assert tuple(ast.literal_eval(match.group(1))) == tuple(harness.backends_of(md))


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_no_legacy_keras(md: Path):
    text = md.read_text()
    for legacy in ("tf.keras", "ImageDataGenerator(", "fit_generator(", "input_shape="):
        code = "\n".join(code_cells(jupytext.read(md)))
        assert legacy not in code, f"{md.name} uses legacy {legacy}"
    assert "{glue:text}" not in text or "glue(" in text


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_chapter_asserts_a_quality_bar(md: Path):
    code = "\n".join(code_cells(jupytext.read(md)))
    assert re.search(r"^assert ", code, re.M), f"{md.name} asserts nothing"


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_only_tensorflow_chapters_use_tensorflow(md: Path):
    code = "\n".join(code_cells(jupytext.read(md)))
    if "jax" in harness.backends_of(md):
        assert "import tensorflow" not in code, f"{md.name} declares jax but imports tensorflow"


def test_toc_lists_existing_files_and_every_chapter():
    listed = harness.toc_files()
    for entry in listed:
        assert (ROOT / f"{entry}.md").exists(), f"_toc.yml lists {entry}, which does not exist"
    for md in SOURCES:
        assert f"chapters/{md.stem}" in listed, f"{md.name} is not in _toc.yml"


def test_colab_links_open_the_colab_edition():
    """The launch button opens <repo>/blob/<branch>/<path_to_book>/<page>.ipynb: the
    branch the site is published to and the folder the Colab edition is written to."""
    import colab_edition

    assert CONFIG["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")
    assert REPO_URL.startswith("https://github.com/")
    assert CONFIG["repository"]["branch"] == colab_edition.PUBLISHED_BRANCH
    assert CONFIG["repository"]["path_to_book"] == colab_edition.FOLDER


def test_bootstrap_version_is_the_package_version():
    """The version the bootstrap installs is pyproject.toml's, and dlbook reports it."""
    import dlbook

    assert f'DLBOOK_VERSION = "{VERSION}"' in BOOTSTRAP
    assert dlbook.__version__ == VERSION
    assert SITE_URL.startswith("https://") and REPO_URL in BOOTSTRAP


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "DLBOOK_PROFILE=smoke" in ci and "DLBOOK_DATA_MIRROR" in ci


EQ_LABEL = re.compile(r"\$\$\s*\((eq-[A-Za-z0-9_-]+)\)|:label: (eq-[A-Za-z0-9_-]+)")


def test_equation_labels_are_unique_and_prefixed():
    """Equation labels are global across the book: prefix them eq-NN- by chapter."""
    seen: dict[str, str] = {}
    for md in SOURCES:
        for a, b in EQ_LABEL.findall(md.read_text()):
            label = a or b
            assert label.startswith(f"eq-{md.stem[:2]}-"), f"{md.name}: label {label} should start eq-{md.stem[:2]}-"
            assert label not in seen, f"{label} is defined in {md.name} and {seen[label]}"
            seen[label] = md.name
