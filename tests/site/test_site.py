"""Build the site with warnings as errors and check the rendered pages.

The build renders chapters from the execution cache that ``make chapters``
filled (tests/harness.py), so nothing is executed twice. Pages are then
checked as a reader sees them, in headless Chromium: math typeset by the
MathJax bundled with the site (no network), every figure loaded, no
tracebacks or log lines, the Colab launch button present.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import colab_edition  # noqa: E402
import harness  # noqa: E402
import results_page  # noqa: E402

ROOT = harness.ROOT
HTML = ROOT / "_build" / "html"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
CHAPTERS = harness.chapter_sources()
IDS = [md.stem for md in CHAPTERS]
LOG_PATTERNS = harness.PAGE_LOG_PATTERNS


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="session")
def build_log() -> str:
    """Run ``jupyter-book build -W`` once per test session; return its log."""
    env = dict(os.environ)
    results_page.main([])  # the results page includes the tables and plots made from the recorded runs
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-W", "--keep-going"],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    log = proc.stdout + proc.stderr
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "site-build.log").write_text(log)
    assert proc.returncode == 0, "site build failed (warnings are errors):\n" + log[-6000:]
    colab_edition.main(["build"])  # the wheel and the Colab edition, as `make book` writes them
    return log


def test_build_reused_the_nbmake_outputs(build_log: str):
    """Chapters executed by nbmake must not be executed a second time."""
    staged = sorted(p.stem for p in (harness.EXEC / "tensorflow").glob("*.ipynb"))
    if not staged:
        pytest.skip("no nbmake outputs in _nbexec/tensorflow (run `make chapters` first)")
    executed = re.findall(r"(\S+\.md): Executing notebook", build_log)
    assert not executed, f"the site build executed {executed} again instead of using nbmake's outputs"
    for stem in staged:  # a chapter the build re-read must have come from the cache
        if re.search(rf"reading sources.*{stem}", build_log):
            assert re.search(rf"{stem}\.md: Using cached notebook", build_log), f"{stem} missed the cache"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.stderr_blocks = 0
        self.text: list[str] = []
        self.prose: list[str] = []  # text outside <pre> and <code>
        self._code_depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("pre", "code"):
            self._code_depth += 1
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if "stderr" in (a.get("class") or ""):
            self.stderr_blocks += 1

    def handle_endtag(self, tag):
        if tag in ("pre", "code") and self._code_depth:
            self._code_depth -= 1

    def handle_data(self, data):
        self.text.append(data)
        if not self._code_depth:
            self.prose.append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_chapter_page_is_clean(build_log: str, md: Path):
    page_path = HTML / "chapters" / f"{md.stem}.html"
    assert page_path.exists()
    page = parse(page_path)
    text = "".join(page.text)
    for pattern in LOG_PATTERNS:
        assert not re.search(pattern, text), f"{page_path.name} shows log output matching {pattern!r}"
    assert page.stderr_blocks == 0, f"{page_path.name} has stderr output"
    raw = re.findall(r"\|\s*-{3,}\s*\|.{0,60}", "".join(page.prose))
    assert not raw, f"{page_path.name} shows a markdown table as raw text (not rendered): {raw[:2]}"
    for src in page.images:
        assert not src.startswith(("http:", "https:", "//")), f"remote image {src}"
        target = (page_path.parent / src).resolve()
        assert target.is_file() and target.stat().st_size > 100, f"missing figure {src}"
    for src in page.scripts:
        assert not src.startswith(("http:", "https:", "//")), f"{page_path.name} loads {src} from the network"
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    published = f"{colab_edition.FOLDER}/chapters/{md.stem}.ipynb"
    colab = f"https://colab.research.google.com/github/{repo}/blob/{colab_edition.PUBLISHED_BRANCH}/{published}"
    assert colab in page.links, f"{page_path.name}: no Colab button to {colab}"
    assert (HTML / published).is_file(), f"the Colab button opens {published}, which the site lacks"
    glued = re.findall(r"\S*<sup>†</sup>", (HTML / published).read_text(encoding="utf-8"))
    if "{glue:text}" in md.read_text(encoding="utf-8"):
        assert glued, f"{published} quotes none of the values the site build computed"


def test_site_publishes_the_wheel_the_bootstrap_installs(build_log: str):
    wheel = HTML / "_static" / colab_edition.wheel_name()
    assert wheel.is_file(), f"{wheel} missing: the Colab bootstrap installs dlbook from it"
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(f"dlbook-{colab_edition.project_version()}.dist-info/METADATA").decode()
    assert f"Version: {colab_edition.project_version()}" in meta
    with zipfile.ZipFile(wheel) as zf:  # dlbook.records reads the recorded runs from it in Colab
        shipped = zf.read("dlbook/_recorded_runs.csv")
    assert shipped == (ROOT / "results" / "recorded_runs.csv").read_bytes()
    assert not (ROOT / "src" / "dlbook" / "_recorded_runs.csv").exists(), "the build's copy was left behind"


def test_mathjax_is_bundled(build_log: str):
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_results_page_lists_every_chapter(build_log: str):
    text = "".join(parse(HTML / "chapters" / "results.html").text)
    for md in CHAPTERS:
        assert md.stem in text, f"the execution table lacks {md.stem}"


PROBE = """
<script>
window.addEventListener('load', function () {
  function report() {
    var imgs = Array.from(document.images);
    document.body.setAttribute('data-images', imgs.length);
    document.body.setAttribute('data-broken', imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.src; }).join(' '));
    document.body.setAttribute('data-math', document.querySelectorAll('mjx-container').length);
    document.body.setAttribute('data-merror', document.querySelectorAll('mjx-merror').length);
    document.body.setAttribute('data-probe', 'done');
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(report, report);
  } else { report(); }
});
</script>
"""


@pytest.mark.parametrize("md", CHAPTERS, ids=IDS)
def test_chapter_renders_in_a_browser(build_log: str, md: Path, tmp_path: Path):
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("DLBOOK_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium not found (install Debian's chromium package)")
        pytest.skip("chromium not found; set DLBOOK_REQUIRE_BROWSER=1 to make this a failure")
    page_path = HTML / "chapters" / f"{md.stem}.html"
    probe_path = page_path.with_name(f"_probe_{md.stem}.html")
    probe_path.write_text(page_path.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    try:
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000",
             "--dump-dom", probe_path.as_uri()],
            capture_output=True, text=True, timeout=180,
        )
    finally:
        probe_path.unlink(missing_ok=True)
    dom = proc.stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body and 'data-probe="done"' in body.group(1), "the page did not finish loading:\n" + proc.stderr[-2000:]
    attrs = dict(re.findall(r'(data-[a-z]+)="([^"]*)"', body.group(1)))
    assert attrs["data-broken"] == "", f"figures that did not load: {attrs['data-broken']}"
    assert int(attrs["data-math"]) > 0, "no math was typeset (MathJax did not run offline)"
    assert attrs["data-merror"] == "0", "MathJax reported errors"
