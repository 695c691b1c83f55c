"""Test harness: stage chapters per backend for nbmake, and hand nbmake's
executed notebooks to the site build's execution cache.

Why: a naive suite executes every chapter twice (nbmake, then the site build).
Here nbmake executes each chapter once per backend it declares; the
TensorFlow-backend outputs are then stored in the jupyter-cache that
``jupyter-book build`` reads (``execute_notebooks: cache``), keyed by the
chapter's code cells exactly as myst-nb keys them, so the site build renders
those outputs without executing anything again.

Usage (from the book's root; ``make test`` runs these)::

    python tests/harness.py stage            # _nbexec/<backend>/*.ipynb
    python tests/harness.py cache tensorflow # executed notebooks -> cache
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
EXEC = ROOT / "_nbexec"  # nbmake skips paths under _build
BACKENDS = ("tensorflow", "jax")


def front_matter(md: Path) -> dict:
    """The YAML front matter of a MyST markdown file ({} if none)."""
    text = md.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}
    end = text.index("\n---", 4)
    return yaml.safe_load(text[4:end]) or {}


def chapter_sources() -> list[Path]:
    """Every chapter notebook source: ``chapters/*.md`` with jupytext front matter."""
    return sorted(md for md in CHAPTERS.glob("*.md") if "jupytext" in front_matter(md))


def backends_of(md: Path) -> list[str]:
    """The Keras backends a chapter declares in its ``dlbook`` metadata."""
    return list(front_matter(md).get("dlbook", {}).get("backends", []))


def toc_files() -> list[str]:
    """Files listed in ``_toc.yml`` (without extension), root first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", []))
    walk(toc.get("chapters", []))
    return files


SECONDS_HINTS = ROOT / "tests" / "chapter_seconds.json"
"""Smoke-profile execution seconds by ``<backend>/<stem>``, from an earlier run
(``python tests/harness.py seconds`` rewrites it): only the order of the run
depends on it, never what passes."""


def stage() -> dict[str, int]:
    """Copy each chapter's .ipynb into ``_nbexec/<backend>/`` for every
    backend it declares, with a conftest.py that runs each copy under its
    folder's backend, longest first; return how many were staged per backend."""
    EXEC.mkdir(exist_ok=True)
    shutil.copy2(ROOT / "tests" / "staged_conftest.py", EXEC / "conftest.py")
    if SECONDS_HINTS.exists():
        shutil.copy2(SECONDS_HINTS, EXEC / "chapter_seconds.json")
    counts = {}
    for backend in BACKENDS:
        folder = EXEC / backend
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        counts[backend] = 0
        for md in chapter_sources():
            if backend in backends_of(md):
                shutil.copy2(md.with_suffix(".ipynb"), folder / md.with_suffix(".ipynb").name)
                counts[backend] += 1
    return counts


def _timestamp(cell, key: str) -> dt.datetime | None:
    value = cell.get("metadata", {}).get("execution", {}).get(key)
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def execution_seconds(nb) -> float | None:
    """Wall time from the first cell's start to the last cell's reply, taken from
    the timing metadata nbclient records in each executed cell."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    starts = [t for c in code if (t := _timestamp(c, "iopub.execute_input"))]
    ends = [t for c in code if (t := _timestamp(c, "shell.execute_reply"))]
    if not starts or not ends:
        return None
    return (max(ends) - min(starts)).total_seconds()


def measured_seconds() -> dict[str, float]:
    """Execution seconds of every executed copy in ``_nbexec``, by ``<backend>/<stem>``."""
    out = {}
    for backend in BACKENDS:
        for path in sorted((EXEC / backend).glob("*.ipynb")):
            seconds = execution_seconds(nbformat.read(path, as_version=4))
            if seconds is not None:
                out[f"{backend}/{path.stem}"] = round(seconds, 1)
    return out


def cache_folder() -> Path:
    """The site build's execution cache (``execute.cache`` of ``_config.yml``)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return ROOT / config["execute"]["cache"]


PROFILE_STAMP = "dlbook-profile.txt"


def current_profile_name() -> str:
    """The profile a chapter executed now would run in (as dlbook decides it)."""
    sys.path.insert(0, str(ROOT / "src"))
    from dlbook.profiles import current_profile

    return current_profile().name


def claim_cache(profile: str) -> bool:
    """Make the execution cache hold only ``profile``'s outputs: the cache is keyed
    by the code cells alone, so outputs of another profile (CI's smoke run, say)
    would otherwise be rendered as if this profile had computed them. Returns
    True when another profile's outputs were discarded."""
    folder = cache_folder()
    stamp = folder / PROFILE_STAMP
    stale = folder.exists() and (not stamp.exists() or stamp.read_text().strip() != profile)
    if stale:
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(profile + "\n")
    return stale


def cache_outputs(backend: str = "tensorflow") -> list[str]:
    """Store executed notebooks of ``_nbexec/<backend>`` in the site's
    jupyter-cache, matched to the chapter sources the way myst-nb matches them.

    Raises SystemExit if a chapter's executed notebook does not line up with
    its source (the cache would then miss and the site would execute again).
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from myst_nb.core.read import read_myst_markdown_notebook

    claim_cache(current_profile_name())
    cache = get_cache(str(cache_folder()))
    done = []
    for executed_path in sorted((EXEC / backend).glob("*.ipynb")):
        md = CHAPTERS / (executed_path.stem + ".md")
        source_nb = read_myst_markdown_notebook(md.read_text(encoding="utf-8"), path=md)
        executed = nbformat.read(executed_path, as_version=4)
        src_cells = [c for c in source_nb.cells if c.cell_type == "code"]
        run_cells = [c for c in executed.cells if c.cell_type == "code"]
        if [c.source.strip() for c in src_cells] != [c.source.strip() for c in run_cells]:
            raise SystemExit(f"{executed_path} does not match {md}: run jupytext --sync")
        if any(not c.get("execution_count") for c in run_cells if c.source.strip()):
            raise SystemExit(f"{executed_path} was not fully executed")
        for src, run in zip(src_cells, run_cells):
            src.outputs = run.outputs
            src.execution_count = run.execution_count
        seconds = execution_seconds(executed)
        cache.cache_notebook_bundle(
            CacheBundleIn(source_nb, str(md), data={"execution_seconds": seconds, "backend": backend}),
            check_validity=False,
            overwrite=True,
        )
        if cache.match_cache_notebook(
            read_myst_markdown_notebook(md.read_text(encoding="utf-8"), path=md)
        ) is None:  # pragma: no cover - match raises KeyError instead
            raise SystemExit(f"cached outputs of {md} cannot be matched")
        done.append(f"{md.name}: {seconds:.1f} s" if seconds else md.name)
    return done


GLUE_REF = re.compile(r"\{glue(?::text|:md|:any|:figure|)\}`([A-Za-z0-9_]+)(?::([^`]*))?`")
LOG_PATTERNS: tuple[str, ...] = (
    r"I0000 ",  # TensorFlow's and XLA's native (absl) log lines: info, warning, error
    r"W0000 ",
    r"E0000 ",
    r"oneDNN custom operations",
    r"absl::InitializeLog",
    r"\d+/\d+ \[=+",  # Keras progress bars
    r"ETA: ",
)
"""Log lines and progress bars a reader must not see: in a chapter's stdout
(:func:`page_problems`) and on its rendered page (:data:`PAGE_LOG_PATTERNS`)."""

PAGE_LOG_PATTERNS: tuple[str, ...] = (
    r"Traceback \(most recent call last\)",
    r"cuda_(?:platform|dnn|blas)",
    *LOG_PATTERNS,
)
"""What the site check (tests/site) looks for in a rendered chapter page's text: the
log patterns, and a traceback or a CUDA plug-in's line (on the page, an error output
or a stderr line would show them; in a notebook :func:`page_problems` reports
stderr whole, and an error output fails the run)."""

LOG_LINES = re.compile("|".join(LOG_PATTERNS))


def page_problems(md: Path, executed) -> list[str]:
    """What the site build (-W) or a reader would object to in an executed chapter:
    stderr output, log lines or progress bars in stdout, glue references with no
    glued value (or a non-numeric value given a number format)."""
    problems = []
    glued: dict[str, str] = {}
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                if out.get("name") == "stderr":
                    problems.append(f"stderr output: {out.get('text', '')[:200]!r}")
                elif LOG_LINES.search(out.get("text", "")):
                    problems.append(f"log line or progress bar in stdout: {out.get('text', '')[:200]!r}")
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                glued[name] = out.get("data", {}).get("application/papermill.record/text/plain", "")
    for key, fmt in GLUE_REF.findall(md.read_text(encoding="utf-8")):
        if key not in glued:
            problems.append(f"{{glue}} reference {key!r} has no glue() call that ran")
        elif fmt and fmt[-1] in "eEfFgG%d":
            try:
                float(glued[key])
            except ValueError:
                problems.append(f"glued {key!r} = {glued[key]!r} cannot take the number format {fmt!r}")
    return problems


def run_one(stem: str, backends: list[str] | None = None) -> int:
    """Execute one chapter with nbmake under each backend it declares (or those
    given), in ``_nbexec/solo/<stem>/<backend>/``, and check the executed page.
    Returns a process exit code; prints the wall time per backend."""
    import subprocess
    import time

    md = CHAPTERS / f"{stem}.md"
    if not md.exists():
        print(f"no chapter {md}")
        return 2
    subprocess.run([str(Path(sys.executable).parent / "jupytext"), "--sync", str(md)], check=True)
    rc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_chapters.py"), "-k", stem]
    ).returncode
    if rc:
        return rc
    for backend in backends or backends_of(md):
        folder = EXEC / "solo" / stem / backend
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        nb_path = folder / f"{stem}.ipynb"
        shutil.copy2(md.with_suffix(".ipynb"), nb_path)
        env = dict(os.environ, KERAS_BACKEND=backend)
        start = time.time()
        rc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
             "--nbmake-timeout=1800", "--overwrite", str(nb_path)], env=env
        ).returncode
        wall = time.time() - start
        executed = nbformat.read(nb_path, as_version=4)
        print(f"== {stem} on {backend}, profile {os.environ.get('DLBOOK_PROFILE', '(auto)')}: "
              f"{'passed' if rc == 0 else 'FAILED'}, {wall:.1f} s wall, "
              f"{execution_seconds(executed) or float('nan'):.1f} s in cells; output in {nb_path}")
        if rc:
            return rc
        problems = page_problems(md, executed)
        for problem in problems:
            print(f"   problem: {problem}")
        if problems:
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("stage", help="copy chapters into _nbexec/<backend>/")
    p_cache = sub.add_parser("cache", help="store executed notebooks in the site cache")
    p_cache.add_argument("backend", nargs="?", default="tensorflow")
    sub.add_parser("list", help="print each backend's staged chapters (JSON)")
    sub.add_parser("claim-cache", help="empty the execution cache if another profile filled it")
    sub.add_parser("seconds", help="rewrite tests/chapter_seconds.json from the executed copies")
    p_run = sub.add_parser("run", help="execute and check one chapter, e.g. run 01_backprop")
    p_run.add_argument("stem")
    p_run.add_argument("--backend", action="append", help="only this backend (repeatable)")
    args = parser.parse_args(argv)
    if args.cmd == "stage":
        counts = stage()
        print("staged chapters:", ", ".join(f"{b}: {n}" for b, n in counts.items()))
    elif args.cmd == "cache":
        for line in cache_outputs(args.backend):
            print("cached", line)
    elif args.cmd == "run":
        return run_one(args.stem, args.backend)
    elif args.cmd == "seconds":
        hints = measured_seconds()
        SECONDS_HINTS.write_text(json.dumps(hints, indent=1, sort_keys=True) + "\n")
        print(f"{SECONDS_HINTS.relative_to(ROOT)}: {len(hints)} chapters")
    elif args.cmd == "claim-cache":
        profile = current_profile_name()
        if claim_cache(profile):
            print(f"execution cache emptied: it held another profile's outputs (this build: {profile})")
    else:
        print(json.dumps({b: sorted(p.name for p in (EXEC / b).glob("*.ipynb")) for b in BACKENDS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
