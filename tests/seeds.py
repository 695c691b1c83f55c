"""Seed sweep: execute one chapter under N consecutive seeds and report how often
it passes and how much each glued figure varies.

A chapter's asserts must hold for every seed, not for one lucky one; a sweep
shows the pass rate, the failing seeds with their assert messages, and the
spread (mean, min, max) of every numeric value the chapter glues. One row per
(seed, figure) goes to ``results/seeds/<stem>-<profile>.csv`` (``-<backend>``
appended for a backend other than TensorFlow).

Usage (from the book's root; ``make seeds`` runs this)::

    python tests/seeds.py 01_backprop --n 20 --profile smoke
    python tests/seeds.py 02_linear_regression --n 3 --profile cpu --start 1234 --backend jax

Seeds run from ``--start`` (default: ``DLBOOK_SEED``'s default, 1234) to
``start + n - 1``; each run gets ``DLBOOK_SEED``, ``DLBOOK_PROFILE`` and
``KERAS_BACKEND`` in its kernel's environment and executes a copy of the
chapter's ``.ipynb`` in ``_nbexec/seeds/<stem>/``, one run at a time.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
WORK = ROOT / "_nbexec" / "seeds"
RESULTS = ROOT / "results" / "seeds"
GLUE_MIME = "application/papermill.record/text/plain"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

sys.path.insert(0, str(ROOT / "src"))
from dlbook.profiles import DEFAULT_SEED, PROFILES  # noqa: E402


@dataclass
class Run:
    """One execution of a chapter: its seed, outcome, wall time and glued numbers."""

    seed: int
    passed: bool
    seconds: float
    figures: dict[str, float] = field(default_factory=dict)
    message: str = ""


def as_number(text: str) -> float | None:
    """A glued ``text/plain`` value as a float, or None when it is not a plain
    number (strings are glued quoted, booleans and tuples are not numbers)."""
    text = text.strip()
    if text in ("True", "False"):
        return None
    if text.startswith("np.float") or text.startswith("np.int"):  # a NumPy scalar's repr
        text = text[text.index("(") + 1 : text.rindex(")")]
    try:
        return float(text)
    except ValueError:
        return None


def glued_numbers(executed) -> dict[str, float]:
    """Every numeric value an executed notebook glued, by name, in glue order
    (myst-nb stores glued data under papermill's record mime type)."""
    values: dict[str, float] = {}
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if not name:
                continue
            data = out.get("data", {})
            number = as_number(data.get(GLUE_MIME, data.get("text/plain", "")))
            if number is not None:
                values[name] = number
    return values


def failure_message(executed) -> str:
    """The first error in an executed notebook as ``Name: value [line]`` (the
    source line the traceback points at, e.g. the failing assert); '' if none."""
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            message = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()
            arrows = [
                ANSI.sub("", line).split("\n")
                for line in out.get("traceback", [])
                if "---->" in ANSI.sub("", line)
            ]
            pointed = [ln for block in arrows for ln in block if ln.lstrip().startswith("---->")]
            if pointed:
                line = re.sub(r"^\s*---->\s*\d*\s*", "", pointed[-1]).strip()
                message += f" [{line}]"
            return message
    return ""


def execute(nb_path: Path, seed: int, profile: str, backend: str, timeout: int = 1800) -> Run:
    """Execute ``nb_path`` in place with nbclient under the given seed, profile
    and backend; return the run's outcome and glued numbers."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(nb_path, as_version=4)
    saved = {k: os.environ.get(k) for k in ("DLBOOK_SEED", "DLBOOK_PROFILE", "KERAS_BACKEND")}
    os.environ.update(DLBOOK_SEED=str(seed), DLBOOK_PROFILE=profile, KERAS_BACKEND=backend)
    start = time.time()
    error = ""
    try:
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", record_timing=True,
            resources={"metadata": {"path": str(nb_path.parent)}},
        ).execute()
    except CellExecutionError:
        pass  # the error is in the notebook's outputs
    except (CellTimeoutError, DeadKernelError) as exc:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.time() - start
    nbformat.write(nb, nb_path)
    message = failure_message(nb) or error
    return Run(seed, not message, seconds, glued_numbers(nb), message)


def summarize(runs: list[Run]) -> list[tuple[str, int, float, float, float]]:
    """(figure, count, mean, min, max) for every glued number, in first-glued order;
    non-finite values are left out of the statistics."""
    names: list[str] = []
    for run in runs:
        names += [name for name in run.figures if name not in names]
    rows = []
    for name in names:
        values = [run.figures[name] for run in runs if name in run.figures and math.isfinite(run.figures[name])]
        if values:
            rows.append((name, len(values), sum(values) / len(values), min(values), max(values)))
        else:
            rows.append((name, 0, math.nan, math.nan, math.nan))
    return rows


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def report(runs: list[Run], title: str) -> str:
    """The printed summary: pass rate, failing seeds and their messages, and
    the spread of every glued number."""
    passed = sum(run.passed for run in runs)
    lines = [f"== {title}: passed {passed}/{len(runs)} ({passed / max(len(runs), 1):.0%})"]
    if runs:
        times = [run.seconds for run in runs]
        lines.append(f"   wall time per run: mean {_fmt(sum(times) / len(times))} s, "
                     f"min {_fmt(min(times))} s, max {_fmt(max(times))} s")
    for run in runs:
        if not run.passed:
            lines.append(f"   seed {run.seed} FAILED: {run.message}")
    rows = summarize(runs)
    if rows:
        width = max(len("figure"), *(len(r[0]) for r in rows))
        lines.append(f"   {'figure':<{width}}  {'n':>3}  {'mean':>11}  {'min':>11}  {'max':>11}")
        for name, count, mean, low, high in rows:
            lines.append(f"   {name:<{width}}  {count:>3}  {_fmt(mean):>11}  {_fmt(low):>11}  {_fmt(high):>11}")
    return "\n".join(lines)


def write_csv(path: Path, runs: list[Run], stem: str, profile: str, backend: str) -> Path:
    """One row per (seed, figure); a run that glued nothing still gets one row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["chapter", "profile", "backend", "seed", "passed", "seconds", "figure", "value", "message"])
        for run in runs:
            head = [stem, profile, backend, run.seed, int(run.passed), f"{run.seconds:.1f}"]
            for name, value in run.figures.items():
                writer.writerow([*head, name, repr(value), run.message])
            if not run.figures:
                writer.writerow([*head, "", "", run.message])
    return path


def csv_path(stem: str, profile: str, backend: str) -> Path:
    suffix = "" if backend == "tensorflow" else f"-{backend}"
    return RESULTS / f"{stem}-{profile}{suffix}.csv"


SUMMARY = "summary.csv"


def read_runs(path: Path) -> tuple[str, str, str, list[Run]]:
    """A sweep's CSV back as (chapter, profile, backend, runs)."""
    by_seed: dict[int, Run] = {}
    meta = ("", "", "")
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            meta = (row["chapter"], row["profile"], row["backend"])
            seed = int(row["seed"])
            run = by_seed.setdefault(seed, Run(seed, row["passed"] == "1", float(row["seconds"]), {}, row["message"]))
            if row["figure"]:
                run.figures[row["figure"]] = float(row["value"])
    return (*meta, list(by_seed.values()))


def write_summary(folder: Path | None = None) -> Path:
    """``summary.csv`` beside the sweeps' CSVs, for the results page: one row per
    sweep and figure that varied across its seeds (figures every seed computes
    alike say nothing about seeds), with the pass rate and the spread."""
    folder = RESULTS if folder is None else folder
    target = folder / SUMMARY
    with target.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["chapter", "profile", "backend", "seeds", "passed", "seconds per run (mean)",
                         "figure", "mean", "min", "max"])
        for path in sorted(folder.glob("*.csv")):
            if path.name == SUMMARY:
                continue
            stem, profile, backend, runs = read_runs(path)
            if not runs:
                continue
            seeds = f"{min(r.seed for r in runs)}-{max(r.seed for r in runs)}"
            passed = f"{sum(r.passed for r in runs)}/{len(runs)}"
            seconds = f"{sum(r.seconds for r in runs) / len(runs):.0f}"
            head = [stem, profile, backend, seeds, passed, seconds]
            varied = [row for row in summarize(runs) if row[1] and row[3] != row[4]]
            for name, _, mean, low, high in varied:
                writer.writerow([*head, name, _fmt(mean), _fmt(low), _fmt(high)])
            if not varied:
                writer.writerow([*head, "(no figure varied)", "", "", ""])
    return target


def sweep(stem: str, n: int, profile: str, start: int = DEFAULT_SEED, backend: str = "tensorflow",
          timeout: int = 1800) -> list[Run]:
    """Execute chapter ``stem`` under seeds ``start .. start + n - 1``, one at a time,
    printing each outcome as it comes."""
    source = CHAPTERS / f"{stem}.ipynb"
    folder = WORK / stem
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{stem}-{profile}-{backend}-*.ipynb"):  # this sweep's earlier runs
        old.unlink()
    runs = []
    for seed in range(start, start + n):
        nb_path = folder / f"{stem}-{profile}-{backend}-{seed}.ipynb"
        shutil.copy2(source, nb_path)
        run = execute(nb_path, seed, profile, backend, timeout)
        print(f"seed {seed}: {'passed' if run.passed else 'FAILED'} in {run.seconds:.1f} s"
              + (f" - {run.message}" if run.message else ""), flush=True)
        runs.append(run)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stem", help="chapter, e.g. 01_backprop; 'summary' rewrites results/seeds/summary.csv")
    parser.add_argument("--n", type=int, default=5, help="number of consecutive seeds (default 5)")
    parser.add_argument("--profile", default="smoke", choices=PROFILES)
    parser.add_argument("--start", type=int, default=DEFAULT_SEED, help=f"first seed (default {DEFAULT_SEED})")
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"))
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)
    if args.stem == "summary":
        print(f"wrote {write_summary().relative_to(ROOT)}")
        return 0
    md = CHAPTERS / f"{args.stem}.md"
    if not md.exists():
        print(f"no chapter {md}")
        return 2
    subprocess.run([str(Path(sys.executable).parent / "jupytext"), "--sync", str(md)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = sweep(args.stem, args.n, args.profile, args.start, args.backend, args.timeout)
    title = f"{args.stem}, profile {args.profile}, {args.backend}, seeds {args.start}-{args.start + args.n - 1}"
    print(report(runs, title))
    path = write_csv(csv_path(args.stem, args.profile, args.backend), runs, args.stem, args.profile, args.backend)
    print(f"   one row per (seed, figure): {path.relative_to(ROOT)}; summary: {write_summary().relative_to(ROOT)}")
    return 0 if all(run.passed for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
