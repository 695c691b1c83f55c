"""What a chapter reports to its page: glued numbers, small tables and source code.

``glue`` stores a value under a name so the prose can quote it with
``{glue:text}`name`:.3f``` (myst-nb); where myst-nb is not installed (Colab)
it quietly does nothing, or shows the value if asked to.

The figures measured outside the site build (``results/recorded_runs.csv``)
are read through :mod:`dlbook.records` (``recorded_value(chapter, quantity, ...)``)
and shown here: ``show_recorded_runs(chapter, columns)``.
"""

from __future__ import annotations

from typing import Any, Sequence

from . import records


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` for the prose under ``name``.

    Returns None, so a ``glue`` call ending a cell adds no stray output.

    Args:
        name: the key the markdown refers to (``{glue:text}`name```).
        value: a number or string (figures: use ``display=True``).
        display: also show the value in the cell's output.
    """
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # NumPy scalar -> Python number, so `:.3f` formats work
    try:
        from myst_nb import glue as _glue
    except ImportError:  # Colab / plain Jupyter: nothing to glue into
        if display:
            from IPython.display import display as _show

            _show(value)
        return
    _glue(name, value, display=display)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")  # a bare | would end the cell


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """A Markdown table as text: floats to ``digits`` decimals (tiny ones in %g);
    a ``|`` inside a header or cell (as in ``max |a - b|``) is escaped."""
    if any(len(r) != len(headers) for r in rows):
        raise ValueError("every row needs one value per header")
    lines = ["| " + " | ".join(_cell(h, digits) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v, digits) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def show_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4):
    """Display :func:`markdown_table` as a rendered table in a notebook."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(headers, rows, digits)))


def show_source(obj: Any) -> None:
    """Display the source code of a function or class (from dlbook) as a Python
    block; a method's indentation is removed."""
    import inspect
    import textwrap

    from IPython.display import Markdown, display

    display(Markdown(f"```python\n{textwrap.dedent(inspect.getsource(obj))}```"))


def show_recorded_runs(chapter: str, columns: Sequence[str] = records.DEFAULT_COLUMNS) -> None:
    """Show a chapter's recorded figures as a compact Markdown table (one row per figure).

    Where there is no CSV (a notebook outside the book's repository, without
    dlbook's wheel), or no figure of this chapter, says so in one line.

    Args:
        chapter: a chapter's file stem (``"04_cnn_cifar10"``).
        columns: which of :data:`dlbook.records.COLUMNS` to show, in order.
    """
    unknown = [c for c in columns if c not in records.COLUMNS]
    if unknown:
        raise ValueError(f"unknown columns {unknown}; the columns are {', '.join(records.COLUMNS)}")
    path = records.recorded_runs_path()
    if path is None:
        print(f"no recorded runs of {chapter} ({records.CSV_IN_BOOK.as_posix()} is in the book's repository)")
        return
    rows = records.recorded(chapter, path=path)
    if not rows:
        print(f"no recorded runs of {chapter} in {records.CSV_IN_BOOK.as_posix()}")
        return
    show_table(list(columns), [[r.cell(c) for c in columns] for r in rows])
