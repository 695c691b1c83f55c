"""Figures measured outside the site build: ``results/recorded_runs.csv``.

The CSV holds one measured figure per row, with the run it came from::

    date,chapter,quantity,value,unit,device,backend,profile,load,command,note

``value`` is a plain number (no thousands separators; a percentage is written
``98.8`` with unit ``%``), ``quantity`` a short key a chapter looks up
(``execution_time``, ``test_accuracy``, ...), unique within a run. A run is
the figures sharing (date, chapter, device, backend, profile, command).
``load`` says how busy the machine was, ``note`` what a figure needs to be
read (the data subset, the seed, a bar it was held to). ``chapter`` is a
chapter's file stem (``08_gpt``) or the name of a peer in :data:`PEERS`
(``nanogpt``), whose published or measured-here figures the chapters compare with.

Chapters quote these figures through :func:`recorded_value` and show a
chapter's figures with :func:`dlbook.report.show_recorded_runs`; the results page renders
every chapter's (``tests/results_page.py``). The file is found in the book's
repository (:func:`book_root`), or, where there is none (Colab), in the copy
that dlbook's wheel ships (``dlbook/_recorded_runs.csv``).

This module needs the standard library only and imports nothing of dlbook's:
:mod:`dlbook.report` reads it to show the figures, never the other way round.
"""

from __future__ import annotations

import csv
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

COLUMNS: tuple[str, ...] = (
    "date", "chapter", "quantity", "value", "unit", "device", "backend", "profile", "load", "command", "note",
)
"""The CSV's columns, in order."""

RUN_COLUMNS: tuple[str, ...] = ("date", "chapter", "device", "backend", "profile", "command")
"""The columns that identify a run: a quantity occurs once per run."""

CSV_IN_BOOK = Path("results") / "recorded_runs.csv"
"""Where the CSV lives, relative to the book's root."""

PACKAGED_CSV = Path(__file__).resolve().parent / "_recorded_runs.csv"
"""The copy shipped in dlbook's wheel (written by ``tests/colab_edition.py build``)."""

PEERS: dict[str, str] = {
    "nanogpt": "nanoGPT (Andrej Karpathy's GPT in PyTorch), the peer of chapter 8",
}
"""Names used in the ``chapter`` column for a peer's figures, and what they are."""

DEFAULT_COLUMNS: tuple[str, ...] = ("date", "quantity", "value", "unit", "device", "backend", "profile")
"""The columns :func:`dlbook.report.show_recorded_runs` shows unless told otherwise."""


def _is_book_root(folder: Path) -> bool:
    return (
        (folder / "_config.yml").is_file()
        and (folder / "_toc.yml").is_file()
        and (folder / "src" / "dlbook").is_dir()
    )


def book_root(start: Path | str | None = None) -> Path | None:
    """The book's repository root, or None where there is none (Colab, an installed wheel).

    The root is the folder holding ``_config.yml``, ``_toc.yml`` and
    ``src/dlbook/``. It is looked for from ``start`` upward when given;
    otherwise from the working directory upward, then from this module's own
    location (``src/dlbook`` of an editable install lies inside the root).
    """
    starts = [Path(start)] if start is not None else [Path.cwd(), Path(__file__).resolve().parent]
    for first in starts:
        first = first.resolve()
        for folder in (first, *first.parents):
            if _is_book_root(folder):
                return folder
    return None


def recorded_runs_path() -> Path | None:
    """The CSV of recorded runs: ``<book root>/results/recorded_runs.csv`` if there
    is one, else the copy shipped inside dlbook's wheel, else None."""
    root = book_root()
    if root is not None and (root / CSV_IN_BOOK).is_file():
        return root / CSV_IN_BOOK
    if PACKAGED_CSV.is_file():
        return PACKAGED_CSV
    return None


@dataclass(frozen=True)
class Record:
    """One measured figure: a row of ``results/recorded_runs.csv``.

    Attributes are the CSV's columns (:data:`COLUMNS`), ``value`` as a float;
    ``value_text`` keeps the value as written (``"1.50"``), for display.
    """

    date: str
    chapter: str
    quantity: str
    value: float
    unit: str
    device: str
    backend: str
    profile: str
    load: str
    command: str
    note: str
    value_text: str = field(default="", compare=False)

    @property
    def run(self) -> tuple[str, ...]:
        """The run this figure belongs to: its values of :data:`RUN_COLUMNS`."""
        return tuple(getattr(self, c) for c in RUN_COLUMNS)

    def cell(self, column: str) -> str:
        """The text of one column, as a table shows it: the value as written,
        whole numbers of five digits or more with thousands separators."""
        if column == "value":
            text = self.value_text or f"{self.value:g}"
            digits = text.lstrip("-")
            return f"{int(text):,}" if digits.isdigit() and len(digits) >= 5 else text
        return str(getattr(self, column))


def parse_records(path: Path | str) -> list[Record]:
    """Read and check a recorded-runs CSV.

    Raises:
        ValueError: the header is not :data:`COLUMNS`, a value is not a plain
            number, a date is not ISO (YYYY-MM-DD), or a quantity occurs twice
            in one run; the message names the line.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = tuple(next(reader, ()))
        if header != COLUMNS:
            raise ValueError(f"{path}: the header must be {','.join(COLUMNS)}; it is {','.join(header)}")
        records: list[Record] = []
        seen: set[tuple[str, ...]] = set()
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(COLUMNS):
                raise ValueError(f"{path}:{line}: {len(row)} fields, expected {len(COLUMNS)}")
            fields = dict(zip(COLUMNS, (v.strip() for v in row)))
            text = fields["value"]
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{path}:{line}: value {text!r} is not a plain number "
                                 "(no thousands separators, no units)") from None
            try:
                datetime.date.fromisoformat(fields["date"])
            except ValueError:
                raise ValueError(f"{path}:{line}: date {fields['date']!r} is not YYYY-MM-DD") from None
            if not fields["quantity"] or not fields["chapter"]:
                raise ValueError(f"{path}:{line}: chapter and quantity must not be empty")
            record = Record(**{**fields, "value": value}, value_text=text)
            key = (*record.run, record.quantity)
            if key in seen:
                raise ValueError(f"{path}:{line}: {record.quantity!r} occurs twice in one run "
                                 f"({record.chapter}, {record.date}, {record.backend}, {record.profile})")
            seen.add(key)
            records.append(record)
    return records


def load_records(path: Path | str | None = None) -> list[Record]:
    """Every recorded figure, in file order (from :func:`recorded_runs_path` by default).

    Raises:
        FileNotFoundError: there is no CSV (neither a book checkout nor the wheel's copy).
    """
    path = recorded_runs_path() if path is None else Path(path)
    if path is None:
        raise FileNotFoundError(f"no {CSV_IN_BOOK.as_posix()}: it is in the book's repository "
                                "and in dlbook's wheel, and neither was found")
    return parse_records(path)


def recorded(
    chapter: str | None = None,
    quantity: str | None = None,
    profile: str | None = None,
    backend: str | None = None,
    device_contains: str | None = None,
    *,
    date: str | None = None,
    command_contains: str | None = None,
    path: Path | str | None = None,
) -> list[Record]:
    """The recorded figures that match every filter given, in file order.

    Args:
        chapter: a chapter's file stem (``"08_gpt"``) or a peer of :data:`PEERS`.
        quantity: the figure's key (``"execution_time"``).
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        backend: ``"tensorflow"``, ``"jax"`` (``"torch"`` for PyTorch peers).
        device_contains: a piece of the device's name, any case (``"H100"``).
        date: the run's date, ``YYYY-MM-DD``.
        command_contains: a piece of the command (``"dlbook.bench"``).
        path: another CSV than :func:`recorded_runs_path`'s.
    """
    exact = {"chapter": chapter, "quantity": quantity, "profile": profile, "backend": backend, "date": date}
    out = []
    for r in load_records(path):
        if any(want is not None and getattr(r, name) != want for name, want in exact.items()):
            continue
        if device_contains is not None and device_contains.lower() not in r.device.lower():
            continue
        if command_contains is not None and command_contains not in r.command:
            continue
        out.append(r)
    return out


def _describe(filters: dict[str, object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in filters.items() if v is not None and k != "path")


def recorded_value(chapter: str, quantity: str, **filters) -> float:
    """The one recorded figure of ``chapter`` named ``quantity`` (as a float).

    ``filters`` are :func:`recorded`'s (``backend``, ``profile``,
    ``device_contains``, ``date``, ``command_contains``, ``path``).

    Raises:
        ValueError: no figure, or more than one, matches; the message names
            the filters, and lists what matched (or the chapter's quantities).
    """
    found = recorded(chapter, quantity, **filters)
    asked = _describe({"chapter": chapter, "quantity": quantity, **filters})
    if len(found) == 1:
        return found[0].value
    if not found:
        others = recorded(chapter, path=filters.get("path"))
        near = [r for r in others if r.quantity == quantity]
        if near:
            runs = "; ".join(f"{r.date} {r.backend} {r.profile} on {r.device}" for r in near)
            raise ValueError(f"no recorded figure matches {asked}; {quantity!r} was recorded in: {runs}")
        keys = sorted({r.quantity for r in others})
        raise ValueError(f"no recorded figure matches {asked}; "
                         + (f"{chapter}'s quantities: {', '.join(keys)}" if keys else f"nothing is recorded for {chapter!r}"))
    runs = "; ".join(f"{r.date} {r.backend} {r.profile} on {r.device} = {r.value_text} ({r.command})" for r in found)
    raise ValueError(f"{len(found)} recorded figures match {asked}: {runs}. "
                     "Add a filter (backend, profile, device_contains, date, command_contains) that picks one")


# The results page: one table per chapter, its runs side by side. ----------------------------------

_BACKEND_SHORT = {"tensorflow": "TF", "jax": "JAX", "torch": "PyTorch"}


def short_device(device: str) -> str:
    """A device's name short enough for a column header (``"CPU"``, ``"H100"``, ``"A100"``)."""
    for gpu in ("H100", "H200", "A100", "T4", "L4", "V100"):
        if gpu in device:
            return gpu
    if "CPU" in device:
        return "2-core CPU" if "2-core" in device else "CPU"
    return device.split(" (")[0]


def runs_of(records: Sequence[Record]) -> dict[tuple[str, ...], list[Record]]:
    """Figures grouped by run (:attr:`Record.run`), runs and figures in file order."""
    runs: dict[tuple[str, ...], list[Record]] = {}
    for r in records:
        runs.setdefault(r.run, []).append(r)
    return runs


def run_labels(runs: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """A short, distinct label per run: backend, profile and device
    (``"TF cpu · CPU"``), then ``bench`` for a benchmark outside the notebook
    and the date where that is still ambiguous."""
    at = {c: i for i, c in enumerate(RUN_COLUMNS)}
    labels: dict[tuple[str, ...], str] = {}
    for run in runs:
        backend = _BACKEND_SHORT.get(run[at["backend"]], run[at["backend"]])
        label = f"{backend} {run[at['profile']]} · {short_device(run[at['device']])}"
        if "dlbook.bench" in run[at["command"]]:
            label += " · bench"
        labels[run] = label
    for suffix in (lambda i, run: f" · {run[at['date']]}", lambda i, run: f" ({i + 1})"):
        clashing = [label for label in set(labels.values()) if list(labels.values()).count(label) > 1]
        for i, (run, label) in enumerate(list(labels.items())):
            if label in clashing:
                labels[run] = label + suffix(i, run)
    return labels


def figures_table(records: Sequence[Record]) -> tuple[list[str], list[list[str]]]:
    """A compact table of some figures (a chapter's): one row per quantity (with
    its unit), one column per run (:func:`run_labels`), then the notes.

    Returns:
        ``(headers, rows)`` for :func:`dlbook.report.markdown_table`; a figure a
        run did not measure is ``-``.
    """
    runs = runs_of(records)
    labels = run_labels(list(runs))
    keys: dict[tuple[str, str], dict[tuple[str, ...], Record]] = {}
    for run, figures in runs.items():
        for r in figures:
            keys.setdefault((r.quantity, r.unit), {})[run] = r
    headers = ["quantity", "unit", *labels.values(), "note"]
    rows = []
    for (quantity, unit), by_run in keys.items():
        notes = {run: r.note for run, r in by_run.items() if r.note}
        if len(set(notes.values())) > 1 or 0 < len(notes) < len(by_run):  # say which run a note is about
            note = "; ".join(f"{labels[run]}: {text}" for run, text in notes.items())
        else:
            note = next(iter(notes.values()), "")
        cells = [by_run[run].cell("value") if run in by_run else "-" for run in runs]
        rows.append([quantity, unit, *cells, note])
    return headers, rows
