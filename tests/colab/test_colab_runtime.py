"""Every chapter's Colab edition, run in a Colab-like runtime (see runtime.py).

Needs the built site with its Colab edition and wheel (``make site``), and the
data mirror folder in ``DLBOOK_DATA_MIRROR`` (served over HTTP, never read as a
folder by the notebooks). ``make colab`` runs it; CI runs it in the smoke profile.

``DLBOOK_COLAB_CHAPTERS=01_backprop,07_attention`` runs only those chapters.

The chapters run in lanes (``DLBOOK_COLAB_LANES``, default: two, or one on a
one-core machine), each its own Colab session: its own environment, site server,
working folder, home and data cache, so no lane sees what another installed or
downloaded. The longest chapters (by the TensorFlow run's timings in
``_nbexec/tensorflow``, where present) start first.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import colab_edition  # noqa: E402
import harness  # noqa: E402
import runtime  # noqa: E402

ALL_STEMS = [md.stem for md in harness.chapter_sources()]
ONLY = [s for s in os.environ.get("DLBOOK_COLAB_CHAPTERS", "").split(",") if s]
STEMS = [s for s in ALL_STEMS if not ONLY or s in ONLY]
"""The chapters run: all, or those named in ``DLBOOK_COLAB_CHAPTERS`` (comma-separated stems)."""


@dataclass
class Lane:
    """One Colab session at a time: an environment, the site served to it, a
    working folder (home, /content, data cache) and the kernel's environment."""

    python: Path
    site: runtime.Served
    work: Path
    env: dict[str, str]


@dataclass
class Outcome:
    returncode: int
    stderr: str
    seconds: float
    wheel_requests: int
    lane: int


def lane_count() -> int:
    value = os.environ.get("DLBOOK_COLAB_LANES")
    if value:
        return max(1, int(value))
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def longest_first(stems: list[str]) -> list[str]:
    """Chapters ordered by the TensorFlow nbmake run's execution time, longest
    first (so the lanes end together); unknown times go last, by name."""
    seconds = {}
    for stem in stems:
        path = harness.EXEC / "tensorflow" / f"{stem}.ipynb"
        if path.exists():
            seconds[stem] = harness.execution_seconds(nbformat.read(path, as_version=4)) or 0.0
    return sorted(stems, key=lambda s: (-seconds.get(s, -1.0), s))


@pytest.fixture(scope="module")
def colab():
    """The lanes and the served mirror, built once."""
    site = colab_edition.HTML
    wheel = site / "_static" / colab_edition.wheel_name()
    if not wheel.exists() or not (site / colab_edition.FOLDER).is_dir():
        pytest.fail(f"{wheel} or the Colab edition is missing: run `make site` first")
    mirror = os.environ.get("DLBOOK_DATA_MIRROR", "")
    if not mirror or not Path(mirror).is_dir():
        pytest.fail("DLBOOK_DATA_MIRROR must name the data mirror folder; it is served over HTTP")
    shutil.rmtree(runtime.WORK, ignore_errors=True)
    served_data = runtime.Served(Path(mirror))
    lanes, note = [], ""
    for i in range(lane_count()):
        start = time.time()
        venv = runtime.VENV if i == 0 else runtime.VENV.with_name(f"{runtime.VENV.name}-{i + 1}")
        python, note = runtime.build_environment(venv)
        print(f"\nColab-like environment {i + 1} in {time.time() - start:.0f} s: {note}")
        served_site = runtime.Served(site)
        work = runtime.WORK / f"lane-{i + 1}"
        lanes.append(Lane(python, served_site, work, runtime.kernel_environment(served_site.url, served_data.url, work)))
    yield lanes, served_data
    for lane in lanes:
        lane.site.close()
    served_data.close()


def run_lane(index: int, lane: Lane, todo: "queue.Queue[str]", outcomes: dict[str, Outcome]) -> None:
    while True:
        try:
            stem = todo.get_nowait()
        except queue.Empty:
            return
        notebook = colab_edition.HTML / colab_edition.FOLDER / "chapters" / f"{stem}.ipynb"
        runtime.uninstall_dlbook(lane.python)
        before = len(lane.site.requests)
        start = time.time()
        result = runtime.execute(lane.python, notebook, lane.env, work=lane.work)
        wheel = [p for p in lane.site.requests[before:] if p.endswith(colab_edition.wheel_name())]
        outcomes[stem] = Outcome(result.returncode, result.stderr, round(time.time() - start, 1), len(wheel), index + 1)


@pytest.fixture(scope="module")
def outcomes(colab) -> dict[str, Outcome]:
    """Every chapter's Colab notebook executed, the lanes pulling chapters from one queue."""
    lanes, _ = colab
    todo: queue.Queue[str] = queue.Queue()
    for stem in longest_first(STEMS):
        todo.put(stem)
    done: dict[str, Outcome] = {}
    start = time.time()
    threads = [threading.Thread(target=run_lane, args=(i, lane, todo, done)) for i, lane in enumerate(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = round(time.time() - start, 1)
    print(f"\n{len(done)} Colab notebooks in {wall} s over {len(lanes)} lane(s):")
    for stem, outcome in sorted(done.items(), key=lambda kv: -kv[1].seconds):
        print(f"  {stem:28s} {outcome.seconds:7.1f} s  lane {outcome.lane}  exit {outcome.returncode}")
    (runtime.WORK / "summary.json").write_text(json.dumps(
        {"python": runtime.colab_python()[1], "lanes": len(lanes), "wall_seconds": wall,
         "seconds": {s: o.seconds for s, o in done.items()}}, indent=1))
    return done


@pytest.mark.parametrize("stem", STEMS)
def test_chapter_runs_in_colab(outcomes, stem: str):
    outcome = outcomes[stem]
    assert outcome.returncode == 0, f"{stem} failed in the Colab runtime:\n{outcome.stderr[-4000:]}"
    assert outcome.wheel_requests, f"{stem}: the bootstrap did not install dlbook from the served site"
    executed = nbformat.read(runtime.WORK / "executed" / f"{stem}.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_datasets_came_over_http(colab, outcomes):
    """Runs after the chapters: every dataset the chapters read was downloaded from
    the HTTP mirror into a fresh cache of some lane (no folder mirror was visible)."""
    if STEMS != ALL_STEMS:
        pytest.skip("DLBOOK_COLAB_CHAPTERS runs some chapters only")
    lanes, served_data = colab
    got = set(served_data.requests)
    for path in ("/mnist/mnist.npz", "/shakespeare/input.txt", "/imdb/aclImdb_text.tar.gz",
                 "/cifar10/cifar10_train50k_test1k.npz"):
        assert path in got, f"{path} was never requested from the HTTP mirror: {sorted(got)}"
        caches = [Path(lane.env["DLBOOK_DATA_DIR"]) / path.lstrip("/") for lane in lanes]
        assert any(c.is_file() for c in caches), f"{path} is in no lane's data cache: {caches}"
