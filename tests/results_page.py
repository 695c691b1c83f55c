"""The recorded runs on the results page: tables and plots made from results/recorded_runs.csv.

    python tests/results_page.py              # -> _build/results_page/

``chapters/results.md`` is plain Markdown (the site build does not execute
it), so the parts that come from the CSV are written here before the build
(``make book`` and the site test run this first) and the page includes them:

* ``recorded_runs.md``: per chapter (then per peer), a compact table of its
  figures, one row per quantity and one column per run, and the runs' dates,
  devices, machine load and commands;
* ``execution_time.svg``: each chapter's execution time by backend, profile
  and device;
* ``gpt_vs_nanogpt.svg``: chapter 8's GPT beside nanoGPT, throughput and
  validation loss, from the figures the CSV holds.

The CSV is the single source; nothing here is edited by hand.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "results_page"

from dlbook import records
from dlbook.records import Record
from dlbook.report import markdown_table

BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
COLOURS = {"tensorflow": "#e8710a", "jax": "#1a73e8", "torch": "#7f7f7f"}


def chapter_stems(root: Path = ROOT) -> list[str]:
    """The chapters' file stems, in order (``chapters/NN_*.md``)."""
    return sorted(p.stem for p in (root / "chapters").glob("[0-9][0-9]_*.md"))


def chapter_title(stem: str, root: Path = ROOT) -> str:
    """A chapter's title: the first ``# `` heading of its Markdown source."""
    path = root / "chapters" / f"{stem}.md"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return stem


def _load(load: str) -> str:
    return load or "load not recorded"


def chapter_section(heading: str, figures: Sequence[Record]) -> str:
    """One chapter's (or peer's) part of the page: a heading, its table, its runs."""
    headers, rows = records.figures_table(figures)
    runs = records.runs_of(figures)
    labels = records.run_labels(list(runs))
    lines = [f"### {heading}", "", markdown_table(headers, rows), ""]
    for run, label in labels.items():
        first = runs[run][0]
        lines.append(f"- **{label}**: {first.date}, {BACKEND_NAMES.get(first.backend, first.backend)} backend, "
                     f"`{first.profile}` profile, {first.device}; {_load(first.load)}; `{first.command}`")
    return "\n".join(lines) + "\n"


def recorded_runs_markdown(all_records: Sequence[Record], root: Path = ROOT) -> str:
    """Every chapter's section, in chapter order, then the peers'."""
    parts = []
    stems = chapter_stems(root)
    known = set(stems) | set(records.PEERS)
    strays = sorted({r.chapter for r in all_records} - known)
    if strays:
        raise SystemExit(f"results/recorded_runs.csv names chapters that do not exist: {', '.join(strays)}")
    for stem in stems:
        figures = [r for r in all_records if r.chapter == stem]
        if figures:
            parts.append(chapter_section(f"{chapter_title(stem, root)} (`{stem}`)", figures))
    for peer, what in records.PEERS.items():
        figures = [r for r in all_records if r.chapter == peer]
        if figures:
            parts.append(chapter_section(f"Peer: {what} (`{peer}`)", figures))
    return "\n".join(parts)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, metadata={"Date": None})  # no timestamp: the same CSV gives the same file
    return path


def plot_execution_times(all_records: Sequence[Record], path: Path) -> Path:
    """Horizontal bars: each chapter's ``execution_time``, one bar per backend,
    profile and device; hatched where the machine was shared (under load)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from dlbook import plots

    times = [r for r in all_records if r.quantity == "execution_time" and r.chapter not in records.PEERS]
    chapters = [c for c in chapter_stems() if any(r.chapter == c for r in times)]
    series = list(dict.fromkeys((r.backend, r.profile, records.short_device(r.device)) for r in times))
    height = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(7.2, 0.3 * len(chapters) * max(len(series), 1) + 1.4))
    for j, key in enumerate(series):
        backend, profile, device = key
        for i, chapter in enumerate(chapters):
            found = [r for r in times if r.chapter == chapter and (r.backend, r.profile, records.short_device(r.device)) == key]
            for r in found[:1]:
                y = i + (j - (len(series) - 1) / 2) * height
                shared = "shared machine" in r.load
                ax.barh(y, r.value, height=height * 0.9, color=COLOURS.get(backend, "#555555"),
                        hatch="///" if shared else None, edgecolor="white" if shared else None, linewidth=0)
                ax.text(r.value * 1.04, y, f"{r.value_text} s", va="center", fontsize=8)
    ax.set_yticks(range(len(chapters)), chapters)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(right=max(r.value for r in times) * 3)
    handles = [Patch(color=COLOURS.get(b, "#555555"), label=f"{BACKEND_NAMES.get(b, b)}, {p} profile, {d}")
               for b, p, d in series]
    handles.append(Patch(facecolor="#bbbbbb", hatch="///", edgecolor="white", label="shared machine (under load)"))
    ax.legend(handles=handles, loc="upper right")
    plots.label(ax, title="Each chapter's execution time, by backend, profile and device",
                xlabel="execution time (s, log scale)", ylabel="chapter")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def _gpt_run_name(r: Record) -> str:
    who = "nanoGPT" if r.chapter == "nanogpt" else "this book"
    kind = ", bench" if "dlbook.bench" in r.command else (", notebook" if "harness.py" in r.command else "")
    when = "published" if "published" in r.device else r.date
    return f"{who}, {BACKEND_NAMES.get(r.backend, r.backend)}, {records.short_device(r.device)}{kind}, {when}"


def plot_gpt_vs_nanogpt(all_records: Sequence[Record], path: Path) -> Path:
    """Chapter 8's GPT beside nanoGPT, one row of panels per recipe (``cpu``:
    nanoGPT's CPU recipe on two cores; ``gpu``: its Shakespeare model on one
    GPU): tokens per second (left) and validation loss (right: final for the
    cpu recipe, best for the gpu recipe), one bar or point per run that
    recorded the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from dlbook import plots

    gpt = [r for r in all_records if r.chapter in ("08_gpt", "nanogpt")]
    recipes = [p for p in ("cpu", "gpu") if any(r.profile == p for r in gpt)]
    per_recipe = {}
    for recipe in recipes:
        runs = records.runs_of([r for r in gpt if r.profile == recipe])
        order = sorted(runs, key=lambda run: (runs[run][0].date, runs[run][0].chapter != "nanogpt"))
        rows = []
        for run in order:
            fig_of = {r.quantity: r for r in runs[run]}
            speed = fig_of.get("tokens_per_second")
            loss = fig_of.get("final_val_loss") or fig_of.get("best_val_loss")
            if speed or loss:
                rows.append((_gpt_run_name(runs[run][0]), speed, loss))
        per_recipe[recipe] = rows
    heights = [len(per_recipe[r]) + 1 for r in recipes]
    fig, axes = plt.subplots(len(recipes), 2, figsize=(11, 0.36 * sum(heights) + 1.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights, "width_ratios": [3, 2]}, sharey="row")
    what = {"cpu": "cpu recipe (0.8 M parameters), two CPU cores",
            "gpu": "gpu recipe (10.7 M parameters), one GPU"}
    for (ax_s, ax_l), recipe in zip(axes, recipes):
        rows = per_recipe[recipe]
        ys = range(len(rows))
        for y, (_, speed, loss) in zip(ys, rows):
            for r, ax in ((speed, ax_s), (loss, ax_l)):
                if r is None:
                    continue
                colour = COLOURS.get(r.backend, "#555555")
                if ax is ax_s:
                    ax.barh(y, r.value, color=colour, height=0.7)
                    bound = "at least " if "at least" in r.note else ""
                    ax.text(r.value, y, f" {bound}{r.value:,.0f}", va="center", fontsize=8)
                else:
                    which = "final" if r.quantity == "final_val_loss" else "best"
                    ax.plot(r.value, y, "o" if which == "final" else "D", color=colour)
                    ax.text(r.value, y, f"  {r.value_text} ({which})", va="center", fontsize=8)
        ax_s.set_yticks(list(ys), [name for name, _, _ in rows], fontsize=8)
        ax_s.invert_yaxis()
        speeds = [s.value for _, s, _ in rows if s]
        ax_s.set_xlim(0, max(speeds) * 1.3)
        losses = [v.value for _, _, v in rows if v]
        span = max(max(losses) - min(losses), 0.02)
        ax_l.set_xlim(min(losses) - 0.5 * span, max(losses) + 1.5 * span)
        ax_s.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        plots.label(ax_s, title=f"Throughput: {what[recipe]}", xlabel="training tokens per second", ylabel="run")
        plots.label(ax_l, title="Validation loss, lower is better",
                    xlabel="validation cross-entropy (nats per character)", ylabel="run")
    suptitle = ("Chapter 8's GPT beside nanoGPT on Tiny Shakespeare, characters "
                "(orange: TensorFlow, blue: JAX, grey: nanoGPT in PyTorch)")
    plots.require_labels(title=suptitle)
    fig.suptitle(suptitle, fontsize=10)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def write(out: Path = OUT, csv_path: Path | None = None) -> list[Path]:
    """Write the page's parts into ``out``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib as mpl

    from dlbook import plots

    plots.use_book_style()
    mpl.rcParams["svg.hashsalt"] = "dlbook-results"  # stable element ids between builds
    all_records = records.load_records(csv_path)
    out.mkdir(parents=True, exist_ok=True)
    page = out / "recorded_runs.md"
    page.write_text(recorded_runs_markdown(all_records), encoding="utf-8")
    return [page, plot_execution_times(all_records, out / "execution_time.svg"),
            plot_gpt_vs_nanogpt(all_records, out / "gpt_vs_nanogpt.svg")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write into (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--csv", type=Path, default=None, help="another CSV than results/recorded_runs.csv")
    args = parser.parse_args(argv)
    for path in write(args.out, args.csv):
        print(f"results page: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
