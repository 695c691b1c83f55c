"""A Colab runtime on this machine: a fresh environment holding only what
Colab's runtime ships, and the book's site and data served over loopback HTTP.

What a reader who opens a chapter in Colab gets is approximated here:

* Python 3.12 (Colab's minor version; pyenv's build where the machine has one,
  else this interpreter, and the difference is printed);
* the packages a chapter imports, at the versions of ``colab-constraints.txt``
  (Colab's published ``pip freeze``), installed with uv into ``_build/colab-venv``;
  anything installed that Colab does not list fails the run;
* no ``dlbook``: the notebook's bootstrap cell installs it from the served site
  (``DLBOOK_SITE``), with pip's index switched off, so only the site can supply it;
* no data folder: ``DLBOOK_DATA_MIRROR`` is an ``http://`` address serving the
  mirror, so every dataset arrives through the download path into a fresh cache.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONSTRAINTS = HERE / "colab-constraints.txt"
VENV = ROOT / "_build" / "colab-venv"
WORK = ROOT / "_build" / "colab-run"
COLAB_PYTHON = "3.12"

PACKAGES = (
    "tensorflow", "keras", "jax", "numpy", "matplotlib", "tensorboard", "starlette", "uvicorn",
    "packaging", "scipy", "ipykernel", "ipython", "nbclient", "nbformat", "pip",
)
"""What the environment gets: the packages the chapters and dlbook import, and
the kernel and notebook client Colab runs them with."""

NOT_IN_COLAB = {"jedi": "IPython 7.34 depends on it; Colab's freeze does not list it"}
"""Packages allowed although Colab's freeze lacks them, each with its reason."""


def constraints() -> dict[str, str]:
    """Colab's versions, by normalised package name."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalise(name)] = version.strip()
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_python() -> tuple[str, str]:
    """A Python of Colab's minor version if the machine has one, else this one;
    returns (path, note)."""
    candidates = sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{COLAB_PYTHON}*/bin/python{COLAB_PYTHON}"))
    candidates += [shutil.which(f"python{COLAB_PYTHON}")]
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run([candidate, "-c", "import platform; print(platform.python_version())"],
                               capture_output=True, text=True)
        if probe.returncode == 0:  # a pyenv shim for a version not selected fails here
            return candidate, f"Python {probe.stdout.strip()} (Colab: 3.12.12)"
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return sys.executable, f"Python {here}: Colab's {COLAB_PYTHON} is not on this machine"


def installed(python: Path) -> dict[str, str]:
    """Installed distributions of an environment, by normalised name."""
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, json; "
         "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"],
        check=True, capture_output=True, text=True,
    ).stdout
    import json

    return {normalise(k): v for k, v in json.loads(out).items()}


def build_environment(venv: Path = VENV) -> tuple[Path, str]:
    """Create the Colab-like environment afresh; return its Python and a note
    on the interpreter. Raises RuntimeError if it holds what Colab does not.
    (A second environment costs seconds: uv links files from its cache.)"""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        raise RuntimeError("uv is needed (pip install uv; it is in the book's test extra)")
    python, note = colab_python()
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([str(uv), "venv", "--quiet", "--python", python, str(venv)], check=True)
    env = dict(os.environ, VIRTUAL_ENV=str(venv))
    subprocess.run([str(uv), "pip", "install", "--quiet", "-c", str(CONSTRAINTS), *PACKAGES], check=True, env=env)
    venv_python = venv / "bin" / "python"
    pins = constraints()
    have = installed(venv_python)
    extra = sorted(n for n in have if n not in pins and n not in NOT_IN_COLAB)
    drift = sorted(f"{n} {v} (Colab {pins[n]})" for n, v in have.items() if n in pins and pins[n] != v)
    if extra or drift:
        raise RuntimeError(f"the environment is not Colab's: not in Colab's list {extra}; other versions {drift}")
    return venv_python, note


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib's name
        self.server.requests.append(self.path)  # type: ignore[attr-defined]


@dataclass
class Served:
    """A folder served over loopback HTTP, with the paths requested."""

    folder: Path
    server: http.server.ThreadingHTTPServer = field(init=False)
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        handler = functools.partial(_QuietHandler, directory=str(self.folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.requests = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def requests(self) -> list[str]:
        return self.server.requests  # type: ignore[attr-defined]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def kernel_environment(site: str, mirror: str, work: Path) -> dict[str, str]:
    """The environment a Colab notebook runs in here: no book checkout, no data
    folder, no package index; the site and the mirror only over HTTP."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        DLBOOK_PROFILE=os.environ.get("DLBOOK_PROFILE", "smoke"),
        DLBOOK_SITE=site,
        DLBOOK_DATA_MIRROR=mirror,
        DLBOOK_DATA_DIR=str(work / "data-cache"),
        PIP_NO_INDEX="1",
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        MPLBACKEND="agg",
        PYDEVD_DISABLE_FILE_VALIDATION="1",  # ipykernel 6.17's debugger, on Python 3.12
        PYTHONUNBUFFERED="1",
    )
    if "DLBOOK_SEED" in os.environ:
        env["DLBOOK_SEED"] = os.environ["DLBOOK_SEED"]
    return env


def execute(python: Path, notebook: Path, env: dict[str, str], timeout: int = 900,
            work: Path = WORK) -> subprocess.CompletedProcess:
    """Execute a Colab notebook with the environment's own kernel, in a scratch
    folder outside the book (Colab's working directory is /content)."""
    run_dir = work / "content"
    run_dir.mkdir(parents=True, exist_ok=True)
    target = WORK / "executed" / notebook.name
    target.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(python), str(HERE / "run_notebook.py"), str(notebook), str(target), "--timeout", str(timeout)],
        cwd=run_dir, env=env, capture_output=True, text=True,
    )


def uninstall_dlbook(python: Path) -> None:
    """Each Colab session starts without dlbook: remove what the last bootstrap installed."""
    subprocess.run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "dlbook"],
                   capture_output=True, env=dict(os.environ, PIP_CONFIG_FILE=os.devnull))


if __name__ == "__main__":  # build the environment alone: python tests/colab/runtime.py
    py, how = build_environment()
    print(f"{py}: {how}")
