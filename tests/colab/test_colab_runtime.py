"""Every chapter's Colab edition, run in a Colab-like runtime (see runtime.py).

Needs the built site with its Colab edition and wheel (``make site``), and the
data mirror folder in ``DLBOOK_DATA_MIRROR`` (served over HTTP, never read as a
folder by the notebooks). ``make colab`` runs it; CI runs it in the smoke profile.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import colab_edition  # noqa: E402
import harness  # noqa: E402
import runtime  # noqa: E402

STEMS = [md.stem for md in harness.chapter_sources()]
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def colab():
    """The environment, the served site and the served mirror, built once."""
    site = colab_edition.HTML
    wheel = site / "_static" / colab_edition.wheel_name()
    if not wheel.exists() or not (site / colab_edition.FOLDER).is_dir():
        pytest.fail(f"{wheel} or the Colab edition is missing: run `make site` first")
    mirror = os.environ.get("DLBOOK_DATA_MIRROR", "")
    if not mirror or not Path(mirror).is_dir():
        pytest.fail("DLBOOK_DATA_MIRROR must name the data mirror folder; it is served over HTTP")
    shutil.rmtree(runtime.WORK, ignore_errors=True)
    start = time.time()
    python, note = runtime.build_environment()
    print(f"\nColab-like environment in {time.time() - start:.0f} s: {note}")
    served_site, served_data = runtime.Served(site), runtime.Served(Path(mirror))
    env = runtime.kernel_environment(served_site.url, served_data.url, runtime.WORK)
    yield python, env, served_site, served_data
    served_site.close()
    served_data.close()
    summary = runtime.WORK / "summary.json"
    summary.write_text(json.dumps({"python": note, "seconds": TIMES}, indent=1))


@pytest.mark.parametrize("stem", STEMS)
def test_chapter_runs_in_colab(colab, stem: str):
    python, env, served_site, served_data = colab
    notebook = colab_edition.HTML / colab_edition.FOLDER / "chapters" / f"{stem}.ipynb"
    runtime.uninstall_dlbook(python)
    before = len(served_site.requests)
    start = time.time()
    result = runtime.execute(python, notebook, env)
    TIMES[stem] = round(time.time() - start, 1)
    assert result.returncode == 0, f"{stem} failed in the Colab runtime:\n{result.stderr[-4000:]}"
    wheel_gets = [p for p in served_site.requests[before:] if p.endswith(colab_edition.wheel_name())]
    assert wheel_gets, f"{stem}: the bootstrap did not install dlbook from the served site"
    executed = nbformat.read(runtime.WORK / "executed" / f"{stem}.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_datasets_came_over_http(colab):
    """Runs after the chapters: every dataset the chapters read was downloaded from
    the HTTP mirror into the fresh cache (no folder mirror was visible to them)."""
    python, env, served_site, served_data = colab
    got = set(served_data.requests)
    for path in ("/mnist/mnist.npz", "/shakespeare/input.txt", "/imdb/aclImdb_text.tar.gz",
                 "/cifar10/cifar10_train50k_test1k.npz"):
        assert path in got, f"{path} was never requested from the HTTP mirror: {sorted(got)}"
        assert (Path(env["DLBOOK_DATA_DIR"]) / path.lstrip("/")).is_file()
