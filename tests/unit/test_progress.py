"""dlbook.progress: plain progress lines with an estimate of the time left."""

import io

import pytest

from dlbook.progress import LineProgress, duration, status_line, time_left


@pytest.mark.parametrize("seconds, text", [(0.04, "0.0 s"), (8.44, "8.4 s"), (42.4, "42 s"),
                                           (185, "3 min 05 s"), (3720, "1 h 02 min")])
def test_duration_reads_like_a_person_would_say_it(seconds, text):
    assert duration(seconds) == text


def test_time_left_is_the_pace_so_far_times_what_remains():
    assert time_left(0, 10, 5.0) is None
    assert time_left(2, 10, 4.0) == pytest.approx(16.0)
    # a slow first unit (compiling) is left out of the pace once there is a second
    assert time_left(3, 10, 22.0, first=20.0) == pytest.approx(7.0)
    assert time_left(1, 10, 20.0, first=20.0) == pytest.approx(180.0)
    assert time_left(10, 10, 9.0) == 0.0


def test_status_line_says_done_detail_elapsed_and_left():
    line = status_line("fit", 3, 10, 12.0, unit="epochs", detail="loss 0.41")
    assert line == "fit: 3/10 epochs, loss 0.41; 12 s elapsed, about 28 s left"
    assert status_line("fit", 10, 10, 40.0, unit="epochs") == "fit: 10/10 epochs; 40 s elapsed"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_line_progress_prints_few_plain_lines():
    out, clock = io.StringIO(), Clock()
    progress = LineProgress("unpacking", total=100, unit="files", lines=4, stream=out, clock=clock)
    for _ in range(100):
        clock.now += 0.5
        progress.update()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "unpacking: 1/100 files; 0.5 s elapsed, about 50 s left"
    assert [line.split(":")[1].split()[0] for line in lines] == ["1/100", "25/100", "50/100", "75/100", "100/100"]
    assert lines[-1] == "unpacking: 100/100 files; 50 s elapsed"


def test_line_progress_leaves_a_slow_first_step_out_of_the_estimate():
    out, clock = io.StringIO(), Clock()
    progress = LineProgress("steps", total=4, lines=4, first_is_slow=True, stream=out, clock=clock)
    for seconds in (30.0, 1.0, 1.0, 1.0):
        clock.now += seconds
        progress.update()
    assert out.getvalue().splitlines()[1] == "steps: 2/4; 31 s elapsed, about 2.0 s left"


def test_line_progress_counts_big_updates_and_never_passes_the_total():
    out = io.StringIO()
    progress = LineProgress("x", total=10, lines=2, stream=out, clock=lambda: 1.0)
    progress.update(7)
    progress.update(7)
    assert progress.done == 10
    assert out.getvalue().splitlines()[-1].startswith("x: 10/10")


def test_line_progress_rejects_empty_work():
    with pytest.raises(ValueError):
        LineProgress("x", total=0)
