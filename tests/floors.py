"""Test the book at the floors its pyproject.toml declares (``make floors``).

Why: a floor such as ``keras>=3.13`` is a promise that the book works with
keras 3.13. ``make test`` only ever installs the newest versions, so nothing
checks that promise; this script does.

What it does:

1. builds a fresh virtual environment ``_build/floors-venv`` with uv and
   installs the book with ``--resolution lowest-direct``: every *direct*
   dependency (``[project].dependencies`` and the ``test`` extra) at the
   lowest version its floor allows, everything else at the newest version
   compatible with those;
2. checks that each runtime floor really was installed (a floor that the
   resolver had to lift, because another floor needs more, is not a floor);
3. runs the unit tests and the chapter checks in that environment;
4. executes chapters with nbmake in the smoke profile, under each Keras
   backend the chapter declares: by default the quick ones (01-03) and 11,
   the chapter whose APIs set the keras and tensorflow floors. The copies go
   to ``_nbexec/floors/<backend>/`` (never in ``chapters/``; nbmake refuses to
   collect anything under a ``_build`` folder, hence ``_nbexec``).

It prints the installed versions and a pass/fail summary, and exits non-zero
when any step fails.

Python: Colab's 3.12 when a 3.12 interpreter is found (``python3.12`` on the
PATH or under ``~/.pyenv/versions``), else the interpreter running this
script; ``FLOORS_PYTHON=/path/to/python`` overrides. uv comes from
``$UV``, the PATH, or the book's ``.venv/bin/uv``.

Environment: ``DLBOOK_DATA_MIRROR`` (default ``/work/shared/data`` when that
folder exists) is passed to the chapters; ``DLBOOK_PROFILE`` is ``smoke``.

Usage: ``python tests/floors.py`` (or ``make floors``);
``--skip-install`` reuses an existing ``_build/floors-venv``;
``--chapters '0[4-9]*,10*'`` picks other chapters (globs on chapters/*.ipynb,
comma-separated; ``--chapters ''`` runs none).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "_build" / "floors-venv"
NB_DIR = ROOT / "_nbexec" / "floors"
DEFAULT_CHAPTERS = "0[1-3]*,11*"
BACKENDS = ("tensorflow", "jax")
# Packages whose installed versions are printed (those that exist).
SHOWN = (
    "keras", "tensorflow", "jax", "jaxlib", "numpy", "matplotlib", "starlette",
    "uvicorn", "packaging", "tensorboard", "protobuf", "ml-dtypes", "h5py",
    "onnx", "onnxruntime", "tf2onnx", "pytest", "nbmake", "nbclient",
    "ipykernel", "jupytext", "jupyter-book",
)


def runtime_floors(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """``{name: floor}`` for every ``name>=floor`` in ``[project].dependencies``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    floors = {}
    for dep in deps:
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9A-Za-z.]*)", dep)
        if match:
            floors[match.group(1).lower().replace("_", "-")] = match.group(2)
    return floors


def find_uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(ROOT / ".venv" / "bin" / "uv")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("uv not found: pip install uv, or set UV=/path/to/uv")


def _works(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import sys"], capture_output=True).returncode == 0
    except OSError:
        return False


def find_python() -> str:
    """Colab's Python (3.12) if available, else the one running this script."""
    if os.environ.get("FLOORS_PYTHON"):
        return os.environ["FLOORS_PYTHON"]
    candidates = [shutil.which("python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12.*/bin/python3.12")))
    for candidate in candidates:
        if candidate and _works(candidate):
            return candidate
    return sys.executable


def run(cmd: list[str], **kwargs) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], **kwargs).returncode


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for commands in the floors venv (not the caller's venv)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def install(uv: str, python: str) -> int:
    if VENV.exists():
        shutil.rmtree(VENV)
    rc = run([uv, "venv", "--python", python, VENV])
    if rc:
        return rc
    return run(
        [uv, "pip", "install", "--python", VENV / "bin" / "python",
         "--resolution", "lowest-direct", "-e", ".[test]"],
        cwd=ROOT, env=clean_env(),
    )


def installed_versions(python: Path) -> dict[str, str]:
    code = (
        "import json, sys\n"
        "from importlib.metadata import version, PackageNotFoundError\n"
        "out = {'python': sys.version.split()[0]}\n"
        f"for name in {list(SHOWN)!r} + sys.argv[1:]:\n"
        "    try: out[name] = version(name)\n"
        "    except PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    import json

    result = subprocess.run(
        [str(python), "-c", code, *runtime_floors()], capture_output=True, text=True, env=clean_env()
    )
    if result.returncode:
        print(result.stderr)
        return {}
    return json.loads(result.stdout)


def floors_installed(versions: dict[str, str]) -> list[str]:
    """Problems: runtime floors that are not what got installed.

    ``tensorflow>=2.16`` is honoured by any 2.16.x (PyPI has no 2.16.0); a
    2.17 would mean the floor is not the version tested.
    """
    problems = []
    for name, floor in runtime_floors().items():
        have = versions.get(name)
        if have is None:
            problems.append(f"{name}: not installed")
            continue
        want = [int(p) for p in floor.split(".") if p.isdigit()]
        got = [int(p) for p in re.findall(r"\d+", have)[: len(want)]]
        if got != want:
            problems.append(f"{name}: floor {floor} but {have} was installed")
    return problems


def declared_backends(notebook: Path) -> list[str]:
    """The backends a chapter declares (``dlbook: backends: [...]`` in its .md)."""
    md = notebook.with_suffix(".md")
    text = md.read_text(encoding="utf-8") if md.exists() else ""
    match = re.search(r"^\s*backends:\s*\[([^\]]*)\]", text.split("\n---", 1)[0], re.M)
    names = [b.strip() for b in match.group(1).split(",")] if match else ["tensorflow"]
    return [b for b in names if b in BACKENDS]


def report_stderr(folder: Path) -> None:
    """Print what the executed chapters wrote to stderr (warnings, mostly):
    a reader at the floors would see it. Informational; it fails nothing."""
    import json

    for nb_path in sorted(folder.glob("*.ipynb")):
        try:
            cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError):
            continue
        for index, cell in enumerate(cells):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
                    first = text.strip().splitlines()[:3]
                    print(f"  stderr in {nb_path.name} cell {index}: " + " | ".join(first)[:300])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-install", action="store_true", help="reuse _build/floors-venv")
    parser.add_argument("--chapters", default=DEFAULT_CHAPTERS,
                        help=f"comma-separated globs of chapters/*.ipynb (default {DEFAULT_CHAPTERS!r})")
    args = parser.parse_args(argv)

    started = time.monotonic()
    results: list[tuple[str, bool, float]] = []

    def step(name: str, fn) -> bool:
        t0 = time.monotonic()
        ok = bool(fn())
        results.append((name, ok, time.monotonic() - t0))
        print(f"== {name}: {'passed' if ok else 'FAILED'} ({time.monotonic() - t0:.0f} s)", flush=True)
        return ok

    python = VENV / "bin" / "python"
    if not (args.skip_install and python.exists()):
        uv, base = find_uv(), find_python()
        print(f"floors venv: {VENV} from {base}; uv {uv}", flush=True)
        if not step("install at the floors (uv --resolution lowest-direct)", lambda: install(uv, base) == 0):
            return summary(results, started)

    versions = installed_versions(python)
    print("installed:", ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)

    def check_floors() -> bool:
        problems = floors_installed(versions)
        for problem in problems:
            print("  floor not tested:", problem)
        return not problems

    step("each runtime floor is the version installed", check_floors)

    step("unit tests and chapter checks", lambda: run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit", "tests/test_chapters.py"],
        cwd=ROOT, env=clean_env(),
    ) == 0)

    notebooks = sorted({nb for pattern in filter(None, args.chapters.split(","))
                        for nb in (ROOT / "chapters").glob(pattern.strip() + ".ipynb")})
    shutil.rmtree(NB_DIR, ignore_errors=True)
    mirror = os.environ.get("DLBOOK_DATA_MIRROR") or (
        "/work/shared/data" if Path("/work/shared/data").is_dir() else "")
    for backend in BACKENDS:
        staged = [nb for nb in notebooks if backend in declared_backends(nb)]
        if not staged:
            continue
        folder = NB_DIR / backend
        folder.mkdir(parents=True)
        for nb in staged:
            shutil.copy2(nb, folder / nb.name)
        extra = {"DLBOOK_PROFILE": "smoke", "KERAS_BACKEND": backend}
        if mirror:
            extra["DLBOOK_DATA_MIRROR"] = mirror
        names = " ".join(nb.stem[:2] for nb in staged)
        step(f"chapters {names} under {backend} (smoke profile, nbmake)", lambda: run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake", "--overwrite",
             "--nbmake-timeout=600", "--durations=0", folder],
            cwd=ROOT, env=clean_env(**extra),
        ) == 0)
        report_stderr(folder)

    print("installed:", ", ".join(f"{k} {v}" for k, v in versions.items()))
    return summary(results, started)


def summary(results: list[tuple[str, bool, float]], started: float) -> int:
    print("\n== floors summary")
    for name, ok, seconds in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}  ({seconds:.0f} s)")
    failed = sum(not ok for _, ok, _ in results)
    print(f"== {len(results) - failed} passed, {failed} failed in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
