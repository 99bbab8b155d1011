"""The overview's per-minute series from cumulative counters, and quantiles from buckets."""

from __future__ import annotations

import math

from parley.metrics import ANSWER_BUCKETS
from parley.overview import MinuteSeries, Snapshot, quantile

BOUNDS = (1.0, 2.0, 5.0)


def cumulative(*counts_per_bucket: float) -> tuple[float, ...]:
    total, out = 0.0, []
    for count in counts_per_bucket:
        total += count
        out.append(total)
    return tuple(out)


def test_a_quantile_interpolates_inside_the_bucket_its_rank_falls_in() -> None:
    buckets = cumulative(10, 10, 0, 0)  # 10 in (0,1], 10 in (1,2]
    assert quantile(0.5, buckets, BOUNDS) == 1.0
    assert quantile(0.75, buckets, BOUNDS) == 1.5
    assert quantile(0.99, cumulative(0, 0, 0, 5), BOUNDS) == 5.0  # +Inf answers the highest bound
    assert quantile(0.5, cumulative(0, 0, 0, 0), BOUNDS) is None


class Counters:
    def __init__(self) -> None:
        self.turns = 0.0
        self.seconds: list[float] = []
        self.errors = 0.0

    def read(self) -> Snapshot:
        buckets = tuple(float(sum(1 for s in self.seconds if s <= b)) for b in (*ANSWER_BUCKETS, math.inf))
        return Snapshot(turns=float(len(self.seconds)), buckets=buckets, errors=self.errors)


def test_each_minute_counts_what_happened_in_it_and_unsampled_minutes_are_empty() -> None:
    now = [600.0]
    counters = Counters()
    series = MinuteSeries(max_minutes=10, read=counters.read, clock=lambda: now[0])
    series.sample()
    counters.seconds += [0.4, 0.4, 0.4, 9.0]
    counters.errors += 1
    now[0] = 665.0  # the next minute
    series.sample()
    counters.seconds += [1.5]
    now[0] = 790.0  # two minutes later, not sampled in between
    out = series.series(4)
    assert out["turns"] == [[600, 4], [660, 1], [720, 0], [780, 0]]
    assert out["errors"] == [[600, 1], [660, 0], [720, 0], [780, 0]]
    p50 = out["answer_p50_ms"]
    assert p50[0][1] is not None and 250 <= p50[0][1] <= 500
    assert out["answer_p95_ms"][0][1] >= 8000
    assert p50[2][1] is None and p50[3][1] is None


def test_the_series_keeps_at_most_its_minutes() -> None:
    now = [0.0]
    counters = Counters()
    series = MinuteSeries(max_minutes=3, read=counters.read, clock=lambda: now[0])
    for minute in range(10):
        now[0] = minute * 60.0
        series.sample()
    assert len(series.series(100)["turns"]) == 3
    assert series.minutes(100)[0][0] == 7 * 60  # the oldest kept
