"""Times, text tables, ids, settings checks and the progress bar of the ops commands."""

from __future__ import annotations

import io

import pytest

from parley.ops.common import (
    OpsError,
    format_time,
    one_line,
    parse_time,
    render_table,
    require_services,
    validate_id,
)
from parley.ops.progress import ProgressBar, render_progress
from parley.settings import Settings
from tests.ops.fakes import TTY


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2025-01-02T03:04:05Z", 1735787045.0),
        ("2025-01-02T03:04:05+00:00", 1735787045.0),
        ("2025-01-02T04:04:05+01:00", 1735787045.0),
        ("2025-01-02T03:04:05", 1735787045.0),  # no offset: UTC
        ("2025-01-02", 1735776000.0),
        ("2025-01-02T03:04:05.250Z", 1735787045.25),
    ],
)
def test_parse_time_accepts_iso_8601_and_reads_naive_times_as_utc(text, epoch):
    assert parse_time(text) == epoch


def test_parse_time_says_what_to_write():
    with pytest.raises(ValueError, match=r"not an ISO 8601 time; write e\.g\. 2025-01-31T14:00:00Z"):
        parse_time("yesterday")


def test_format_time_is_utc_to_the_second():
    assert format_time(1735787045.9) == "2025-01-02T03:04:05Z"
    assert format_time(None) == "-"


def test_one_line_flattens_and_cuts_with_an_ellipsis():
    assert one_line("a\nb\t c", 10) == "a b c"
    assert one_line("x" * 10, 10) == "x" * 10
    assert one_line("x" * 11, 10) == "x" * 9 + "…"
    assert len(one_line("y" * 500, 60)) == 60
    assert one_line("abc", 0) == ""


def test_render_table_aligns_columns_without_trailing_spaces():
    table = render_table(("ID", "STAGE", "ERROR"), [["a", "processor", ""], ["long-id", "p", "boom"]])
    assert table.splitlines() == [
        "ID       STAGE      ERROR",
        "a        processor",
        "long-id  p          boom",
    ]


def test_render_table_rejects_a_ragged_row():
    with pytest.raises(ValueError, match="2 cells"):
        render_table(("A", "B", "C"), [["x", "y"]])


def test_validate_id():
    assert validate_id("replay-2025.01:fix_1", "replay id") == "replay-2025.01:fix_1"
    for bad in ("", "-leading", "has space", "x" * 129, "slash/no"):
        with pytest.raises(ValueError, match="replay id"):
            validate_id(bad, "replay id")


def test_require_services_names_the_missing_variables():
    with pytest.raises(OpsError, match="set PARLEY_KAFKA_URL and PARLEY_MONGO_URL"):
        require_services(Settings(kafka_url=None, mongo_url=None))
    with pytest.raises(OpsError, match="set PARLEY_MONGO_URL:"):
        require_services(Settings(kafka_url="kafka://k:9092", mongo_url=None))
    urls = require_services(Settings(kafka_url="kafka://k:9092", mongo_url="mongodb://m"))
    assert urls == ("kafka://k:9092", "mongodb://m")


def test_render_progress():
    assert render_progress("replay incoming", 1200, 5000, 34, width=10) == (
        "replay incoming [##--------] 1,200/5,000 records (24%)  34 sent"
    )
    assert render_progress("r", 0, 0, 0, width=4) == "r [####] 0/0 records (100%)  0 sent"
    assert render_progress("r", 9, 4, 1, width=4) == "r [####] 4/4 records (100%)  1 sent"


def test_progress_bar_redraws_at_most_ten_times_a_second():
    now = [0.0]
    stream = TTY()
    bar = ProgressBar(stream, "replay", clock=lambda: now[0])
    assert bar.enabled
    for step in range(100):  # 100 updates within 0.99 s
        now[0] = step * 0.01
        bar.update(step, 100, 0)
    assert bar.draws == 10
    bar.update(100, 100, 3, force=True)
    assert bar.draws == 11
    assert stream.getvalue().endswith("\r" + render_progress("replay", 100, 100, 3))
    bar.close()
    assert stream.getvalue().endswith("\r" + " " * len(render_progress("replay", 100, 100, 3)) + "\r")


def test_progress_bar_pads_over_a_longer_previous_line():
    now = [0.0]
    stream = TTY()
    bar = ProgressBar(stream, "r", clock=lambda: now[0])
    bar.update(1000, 1000, 1000)
    long = len(render_progress("r", 1000, 1000, 1000))
    now[0] = 1.0
    bar.update(1, 1000, 0)
    last = stream.getvalue().rsplit("\r", 1)[1]
    assert len(last) == long and last.startswith(render_progress("r", 1, 1000, 0))


def test_progress_bar_is_silent_when_stderr_is_not_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(stream, "replay")
    assert not bar.enabled
    bar.update(1, 2, 0, force=True)
    bar.close()
    assert stream.getvalue() == ""
