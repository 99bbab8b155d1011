"""The overview's time series: this process's own metrics (``parley.metrics``), per minute.

``MinuteSeries.sample`` reads the cumulative counters (answered turns and the buckets of
``parley_answer_seconds``, errors) and keeps their values at the start of each minute, at most
``max_minutes`` of them; a minute's figures are the differences between its start and the next
minute's. Sampling a few times a minute is enough (the web app does it every
``SAMPLE_INTERVAL_S``); minutes without a sample (an idle loop, a pause) count as zero.

Quantiles come from the histogram's buckets, interpolated linearly inside the bucket the rank
falls in (as Prometheus' ``histogram_quantile`` does), so they are estimates at the buckets'
resolution.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from parley import metrics

__all__ = ["MinuteSeries", "Snapshot", "SAMPLE_INTERVAL_S", "MAX_MINUTES", "current", "quantile", "read_snapshot"]

SAMPLE_INTERVAL_S = 10.0
#: How many minutes the series keeps (and the most the overview endpoint answers).
MAX_MINUTES = 24 * 60


@dataclass(frozen=True)
class Snapshot:
    """Cumulative values at one moment: answered turns, the answer histogram's cumulative bucket
    counts (one per bound of ``metrics.ANSWER_BUCKETS``, then +Inf), and errors."""

    turns: float
    buckets: tuple[float, ...]
    errors: float

    def minus(self, earlier: Snapshot) -> Snapshot:
        # a counter never goes down; if it did (a reset), the later value is the minute's
        return Snapshot(
            turns=_delta(self.turns, earlier.turns),
            buckets=tuple(_delta(a, b) for a, b in zip(self.buckets, earlier.buckets, strict=True)),
            errors=_delta(self.errors, earlier.errors),
        )


def _delta(later: float, earlier: float) -> float:
    return later - earlier if later >= earlier else later


def _samples(metric: Any) -> list[Any]:
    return [s for family in metric.collect() for s in family.samples]


def read_snapshot() -> Snapshot:
    """The process's counters now."""
    bounds: dict[float, float] = {}
    turns = 0.0
    for sample in _samples(metrics.ANSWER_SECONDS):
        if sample.name.endswith("_bucket"):
            bound = float(sample.labels["le"])
            bounds[bound] = bounds.get(bound, 0.0) + sample.value
        elif sample.name.endswith("_count"):
            turns += sample.value
    errors = sum(
        s.value for metric in (metrics.DEAD_LETTERS, metrics.TOOL_ERRORS) for s in _samples(metric)
        if s.name.endswith("_total")
    )
    buckets = tuple(bounds.get(float(b), 0.0) for b in (*metrics.ANSWER_BUCKETS, math.inf))
    return Snapshot(turns=turns, buckets=buckets, errors=errors)


def quantile(q: float, buckets: Sequence[float], bounds: Sequence[float] = metrics.ANSWER_BUCKETS) -> float | None:
    """The ``q`` quantile (0..1) of a histogram given its cumulative bucket counts (the last is
    +Inf); None when it counted nothing. A rank in the +Inf bucket answers the highest bound."""
    total = buckets[-1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip((*bounds, math.inf), buckets, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return float(bounds[-1])
            inside = count - lower_count
            share = (rank - lower_count) / inside if inside > 0 else 1.0
            return lower_bound + (float(bound) - lower_bound) * share
        lower_bound, lower_count = float(bound), count
    return float(bounds[-1])


class MinuteSeries:
    def __init__(
        self,
        *,
        max_minutes: int = MAX_MINUTES,
        read: Callable[[], Snapshot] = read_snapshot,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._read = read
        self._clock = clock
        #: (minute start in epoch seconds, the counters' values then), oldest first
        self._starts: deque[tuple[int, Snapshot]] = deque(maxlen=max_minutes + 1)
        self.max_minutes = max_minutes

    def sample(self) -> None:
        minute = int(self._clock() // 60) * 60
        if not self._starts or self._starts[-1][0] < minute:
            self._starts.append((minute, self._read()))

    def minutes(self, count: int) -> list[tuple[int, Snapshot | None]]:
        """The last ``count`` minutes, oldest first, ending with the current (partial) one: each
        minute's start and its figures (None: this process was not sampling then)."""
        self.sample()
        now = self._read()
        current = self._starts[-1][0]
        count = max(1, min(count, self.max_minutes))
        starts = dict(self._starts)
        # a minute ends where the next sampled one starts
        ends = dict(zip([m for m, _ in self._starts][:-1], [s for _, s in self._starts][1:], strict=True))
        ends[current] = now
        out: list[tuple[int, Snapshot | None]] = []
        for minute in range(current - 60 * (count - 1), current + 1, 60):
            start = starts.get(minute)
            end = ends.get(minute)
            if start is None or end is None:
                out.append((minute, None))
                continue
            # the next sampled minute may be later than minute + 60: its start closes this one
            out.append((minute, end.minus(start)))
        return out

    def series(self, count: int) -> dict[str, list[list[Any]]]:
        """The overview's ``series``: ``[minute start, value]`` pairs, oldest first."""
        turns: list[list[Any]] = []
        p50: list[list[Any]] = []
        p95: list[list[Any]] = []
        errors: list[list[Any]] = []
        for minute, figures in self.minutes(count):
            if figures is None:
                for points in (turns, errors):
                    points.append([minute, 0])
                p50.append([minute, None])
                p95.append([minute, None])
                continue
            turns.append([minute, int(figures.turns)])
            errors.append([minute, int(figures.errors)])
            p50.append([minute, _ms(quantile(0.5, figures.buckets))])
            p95.append([minute, _ms(quantile(0.95, figures.buckets))])
        return {"turns": turns, "answer_p50_ms": p50, "answer_p95_ms": p95, "errors": errors}


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def current() -> dict[str, int]:
    """The gauges now: consumer lag (all assigned partitions) and open chat websockets."""
    lag = sum(s.value for s in _samples(metrics.CONSUMER_LAG))
    sockets = sum(s.value for s in _samples(metrics.WEBSOCKET_CONNECTIONS))
    return {"consumer_lag": int(lag), "sockets": int(sockets)}
