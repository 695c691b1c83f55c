"""dlbook.records: the recorded runs (results/recorded_runs.csv), their lookup and display,
and the results page made from them (tests/results_page.py)."""

import csv
import datetime
import re
import sys
from pathlib import Path

import pytest

from dlbook import records, report
from dlbook.records import COLUMNS, Record

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import results_page  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REAL_CSV = ROOT / "results" / "recorded_runs.csv"

CPU = "2-core x86-64 CPU (CI class)"
GPU = "NVIDIA H100 80GB HBM3"
ROWS = [
    ["2026-11-26", "08_gpt", "execution_time", "258", "s", CPU, "tensorflow", "cpu", "load average 1.4", "harness.py run 08_gpt", ""],
    ["2026-11-26", "08_gpt", "final_val_loss", "1.890", "nats", CPU, "tensorflow", "cpu", "load average 1.4", "harness.py run 08_gpt", "after 2,000 steps"],
    ["2026-11-26", "08_gpt", "final_val_loss", "1.880", "nats", CPU, "jax", "cpu", "", "harness.py run 08_gpt --backend jax", ""],
    ["2026-11-26", "08_gpt", "tokens_per_second", "352501", "tokens/s", GPU, "jax", "gpu", "", "python -m dlbook.bench gpt", "median"],
    ["2026-11-26", "01_backprop", "test_accuracy", "98.8", "%", CPU, "tensorflow", "cpu", "", "pytest --nbmake", "moons"],
]


def write_csv(path: Path, rows=ROWS, header=COLUMNS) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def small_csv(tmp_path, monkeypatch) -> Path:
    """A small CSV that dlbook.records reads as the book's."""
    path = write_csv(tmp_path / "recorded_runs.csv")
    monkeypatch.setattr(records, "recorded_runs_path", lambda: path)
    return path


# Parsing ------------------------------------------------------------------------------------------

def test_parse_gives_one_record_per_row_with_float_values(small_csv):
    recs = records.parse_records(small_csv)
    assert len(recs) == len(ROWS)
    r = recs[1]
    assert isinstance(r, Record) and r.value == 1.89 and r.value_text == "1.890"
    assert (r.chapter, r.quantity, r.unit, r.backend, r.profile, r.note) == (
        "08_gpt", "final_val_loss", "nats", "tensorflow", "cpu", "after 2,000 steps")
    assert r.run == ("2026-11-26", "08_gpt", CPU, "tensorflow", "cpu", "harness.py run 08_gpt")
    with pytest.raises(AttributeError):
        r.value = 2.0  # frozen


@pytest.mark.parametrize("field, bad, message", [
    ("value", "19,733", "not a plain number"),
    ("value", "98.8%", "not a plain number"),
    ("date", "26/11/2026", "not YYYY-MM-DD"),
    ("quantity", "", "must not be empty"),
])
def test_parse_rejects_bad_fields_naming_the_line(tmp_path, field, bad, message):
    row = list(ROWS[0])
    row[COLUMNS.index(field)] = bad
    path = write_csv(tmp_path / "r.csv", [ROWS[1], row])
    with pytest.raises(ValueError, match=f"r.csv:3: .*{message}"):
        records.parse_records(path)


def test_parse_rejects_a_wrong_header_and_a_quantity_twice_in_a_run(tmp_path):
    with pytest.raises(ValueError, match="the header must be"):
        records.parse_records(write_csv(tmp_path / "a.csv", header=("date", "chapter", "figure")))
    with pytest.raises(ValueError, match="occurs twice in one run"):
        records.parse_records(write_csv(tmp_path / "b.csv", [ROWS[0], ROWS[0]]))


def test_cell_shows_the_value_as_written_with_thousands_separators():
    r = Record("2026-11-26", "x", "q", 352501.0, "", CPU, "jax", "cpu", "", "", "", value_text="352501")
    assert r.cell("value") == "352,501" and r.cell("backend") == "jax"
    assert Record("2026-11-26", "x", "q", 1.5, "", CPU, "jax", "cpu", "", "", "", value_text="1.50").cell("value") == "1.50"
    assert Record("2026-11-26", "x", "q", 1000.0, "", CPU, "jax", "cpu", "", "", "", value_text="1000").cell("value") == "1000"


# Filters and recorded_value -----------------------------------------------------------------------

def test_recorded_filters(small_csv):
    assert len(records.recorded()) == len(ROWS)
    assert [r.quantity for r in records.recorded("01_backprop")] == ["test_accuracy"]
    assert len(records.recorded("08_gpt", "final_val_loss")) == 2
    assert [r.value for r in records.recorded("08_gpt", "final_val_loss", backend="jax")] == [1.88]
    assert [r.profile for r in records.recorded(profile="gpu")] == ["gpu"]
    assert len(records.recorded(device_contains="h100")) == 1  # any case
    assert len(records.recorded("08_gpt", command_contains="dlbook.bench")) == 1
    assert records.recorded(date="2025-01-01") == []
    assert records.recorded(path=small_csv) == records.recorded()


def test_recorded_value_returns_the_one_match(small_csv):
    assert records.recorded_value("08_gpt", "final_val_loss", backend="tensorflow") == pytest.approx(1.89)
    assert records.recorded_value("08_gpt", "tokens_per_second", device_contains="H100") == 352501.0


def test_recorded_value_names_what_matched_when_several_do(small_csv):
    with pytest.raises(ValueError) as err:
        records.recorded_value("08_gpt", "final_val_loss", profile="cpu")
    text = str(err.value)
    assert text.startswith("2 recorded figures match chapter='08_gpt', quantity='final_val_loss', profile='cpu'")
    assert "tensorflow" in text and "jax" in text and "1.890" in text and "Add a filter" in text


def test_recorded_value_names_the_filter_when_none_matches(small_csv):
    with pytest.raises(ValueError, match=r"no recorded figure matches chapter='08_gpt', quantity='final_val_loss', "
                                         r"backend='torch'; 'final_val_loss' was recorded in: 2026-11-26 tensorflow"):
        records.recorded_value("08_gpt", "final_val_loss", backend="torch")
    with pytest.raises(ValueError, match="08_gpt's quantities: execution_time, final_val_loss, tokens_per_second"):
        records.recorded_value("08_gpt", "val_loss")
    with pytest.raises(ValueError, match="nothing is recorded for '99_none'"):
        records.recorded_value("99_none", "execution_time")


def test_no_csv_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(records, "recorded_runs_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="results/recorded_runs.csv"):
        records.recorded("08_gpt")


# show_recorded_runs --------------------------------------------------------------------------------

@pytest.fixture
def shown(monkeypatch) -> list[str]:
    """The Markdown text of everything displayed through IPython."""
    import IPython.display

    out: list[str] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: out.append(obj.data))
    return out


def test_show_recorded_runs_shows_a_compact_table(small_csv, shown, capsys):
    report.show_recorded_runs("08_gpt")
    (table,) = shown
    lines = table.splitlines()
    assert lines[0] == "| date | quantity | value | unit | device | backend | profile |"
    assert len(lines) == 2 + 4
    assert lines[3] == f"| 2026-11-26 | final_val_loss | 1.890 | nats | {CPU} | tensorflow | cpu |"
    assert "352,501" in lines[5]
    assert capsys.readouterr().out == ""


def test_show_recorded_runs_with_chosen_columns(small_csv, shown):
    report.show_recorded_runs("01_backprop", columns=("quantity", "value", "unit", "note"))
    assert shown[0].splitlines()[2] == "| test_accuracy | 98.8 | % | moons |"
    with pytest.raises(ValueError, match="unknown columns \\['figure'\\]"):
        report.show_recorded_runs("01_backprop", columns=("quantity", "figure"))


def test_show_recorded_runs_says_so_in_one_line_without_a_csv_or_figures(small_csv, shown, capsys, monkeypatch):
    report.show_recorded_runs("05_gan")
    assert capsys.readouterr().out == "no recorded runs of 05_gan in results/recorded_runs.csv\n"
    monkeypatch.setattr(records, "recorded_runs_path", lambda: None)
    report.show_recorded_runs("04_cnn_cifar10")
    assert capsys.readouterr().out == ("no recorded runs of 04_cnn_cifar10 "
                                       "(results/recorded_runs.csv is in the book's repository)\n")
    assert shown == []


# book_root and the CSV's path -------------------------------------------------------------------------

def fake_book(root: Path, with_csv: bool = True) -> Path:
    (root / "src" / "dlbook").mkdir(parents=True)
    (root / "chapters").mkdir()
    (root / "_config.yml").write_text("title: t\n")
    (root / "_toc.yml").write_text("root: chapters/index\n")
    if with_csv:
        (root / "results").mkdir()
        write_csv(root / "results" / "recorded_runs.csv")
    return root


def test_book_root_from_a_folder_inside_it(tmp_path, monkeypatch):
    root = fake_book(tmp_path / "book")
    assert records.book_root(root / "chapters") == root
    assert records.book_root(str(root)) == root
    assert records.book_root(tmp_path) is None  # above the book: nothing
    monkeypatch.chdir(root / "chapters")
    assert records.book_root() == root
    assert records.recorded_runs_path() == root / "results" / "recorded_runs.csv"


def test_book_root_needs_every_marker(tmp_path):
    root = fake_book(tmp_path / "book")
    (root / "_config.yml").unlink()
    assert records.book_root(root / "chapters") is None


def test_book_root_falls_back_to_the_package_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside any book: the editable install's checkout
    assert records.book_root() == ROOT


def test_csv_path_falls_back_to_the_packaged_copy_then_none(tmp_path, monkeypatch):
    root = fake_book(tmp_path / "book", with_csv=False)
    monkeypatch.setattr(records, "book_root", lambda: root)
    packaged = write_csv(tmp_path / "_recorded_runs.csv")
    monkeypatch.setattr(records, "PACKAGED_CSV", packaged)
    assert records.recorded_runs_path() == packaged
    monkeypatch.setattr(records, "PACKAGED_CSV", tmp_path / "missing.csv")
    assert records.recorded_runs_path() is None
    monkeypatch.setattr(records, "book_root", lambda: None)
    assert records.recorded_runs_path() is None


def test_data_cache_uses_the_same_book_root(monkeypatch, tmp_path):
    from dlbook import data

    monkeypatch.delenv("DLBOOK_DATA_DIR", raising=False)
    root = fake_book(tmp_path / "book")
    monkeypatch.chdir(root / "chapters")
    assert data.cache_dir() == root / "data"


# The real file ----------------------------------------------------------------------------------------

CHAPTERS = {p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.md")}


def test_every_row_of_the_real_csv_parses_and_is_complete():
    recs = records.parse_records(REAL_CSV)
    with REAL_CSV.open(newline="") as f:
        assert len(recs) == sum(1 for _ in csv.reader(f)) - 1 > 0
    for r in recs:
        where = f"{r.chapter} {r.quantity} {r.date}"
        assert isinstance(r.value, float) and re.fullmatch(r"-?\d+(\.\d+)?(e[-+]?\d+)?", r.value_text), where
        assert datetime.date.fromisoformat(r.date) <= datetime.date.today(), where
        assert r.chapter in CHAPTERS or r.chapter in records.PEERS, where
        assert r.profile in ("smoke", "cpu", "gpu"), where
        assert r.backend in ("tensorflow", "jax") or (r.backend == "torch" and r.chapter in records.PEERS), where
        assert re.fullmatch(r"[a-z0-9][a-z0-9_.]*", r.quantity), where
        assert r.device and r.command, where
        assert not (r.unit == "%" and r.value > 100), where


def test_real_csv_normalises_devices_and_gives_each_chapter_run_its_time():
    recs = records.parse_records(REAL_CSV)
    devices = {r.device for r in recs}
    assert "CPU, 2 cores (x86-64, the CI machine class)" not in devices  # the old spelling
    assert len(devices) <= 4  # the CI CPU class, the H100, the A100 (published), a reader's machine
    notebook_runs = {r.run for r in recs if "harness.py run" in r.command or "--nbmake" in r.command or "make check" in r.command}
    timed = {r.run for r in recs if r.quantity == "execution_time"}
    assert notebook_runs <= timed, "every run of a whole chapter records its execution_time"


# The results page -------------------------------------------------------------------------------------

def test_figures_table_puts_runs_side_by_side(small_csv):
    headers, rows = records.figures_table(records.recorded("08_gpt"))
    assert headers == ["quantity", "unit", "TF cpu · 2-core CPU", "JAX cpu · 2-core CPU", "JAX gpu · H100 · bench", "note"]
    assert rows[1][:5] == ["final_val_loss", "nats", "1.890", "1.880", "-"]
    assert rows[1][5] == "TF cpu · 2-core CPU: after 2,000 steps"  # a note of one run says which
    assert rows[2] == ["tokens_per_second", "tokens/s", "-", "-", "352,501", "median"]


def test_run_labels_are_distinct():
    run = ("2026-11-26", "08_gpt", CPU, "tensorflow", "cpu", "python -m dlbook.bench gpt")
    later = ("2026-12-04", *run[1:])
    same_day = (*run[:5], "python -m dlbook.bench gpt --verbose")
    labels = records.run_labels([run, later, same_day])
    assert len(set(labels.values())) == 3
    assert labels[later] == "TF cpu · 2-core CPU · bench · 2026-12-04"


def test_results_page_writes_tables_and_labelled_plots(tmp_path):
    written = results_page.write(tmp_path, REAL_CSV)
    assert [p.name for p in written] == ["recorded_runs.md", "execution_time.svg", "gpt_vs_nanogpt.svg"]
    page = written[0].read_text()
    for chapter in {r.chapter for r in records.parse_records(REAL_CSV)}:
        assert f"(`{chapter}`)" in page
    assert "| quantity | unit |" in page
    for svg, label in zip(written[1:], ["execution time (s, log scale)", "training tokens per second"]):
        text = svg.read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text
        assert f"<!-- {label} -->" in text  # matplotlib names each text it draws
