"""The overview's figures from Prometheus (``PARLEY_PROMETHEUS_URL``): every worker's and
gateway's metrics together, where the process serving the console only knows its own (a gateway
answers no turns, a worker holds no sockets). The queries of one answer go out together.

Per minute over the range asked for (``/api/v1/query_range``, step 60 s): answered turns
(``parley_answer_seconds_count``), p50 and p95 answer time (``histogram_quantile`` of the
summed buckets) and errors (dead letters and tool errors); now (``/api/v1/query``): consumer lag
and open chat websockets summed over every process. Each request has a timeout; any failure
raises ``PrometheusUnavailable`` and the overview falls back to the process's own figures.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiohttp

__all__ = ["PrometheusOverview", "PrometheusUnavailable", "QUERIES"]

#: One request to Prometheus, at most.
TIMEOUT_S = 5.0

QUERIES = {
    "turns": "sum(increase(parley_answer_seconds_count[1m]))",
    "answer_p50_ms": "1000 * histogram_quantile(0.5, sum by (le) (increase(parley_answer_seconds_bucket[1m])))",
    "answer_p95_ms": "1000 * histogram_quantile(0.95, sum by (le) (increase(parley_answer_seconds_bucket[1m])))",
    "errors": 'sum(increase({__name__=~"parley_dead_letters_total|parley_tool_errors_total"}[1m]))',
}
NOW_QUERIES = {
    "consumer_lag": "sum(parley_consumer_lag)",
    "sockets": "sum(parley_websocket_connections)",
}
#: Series whose missing minutes are 0 (counts); the others are null (no answer, no time).
_COUNTS = ("turns", "errors")


class PrometheusUnavailable(RuntimeError):
    """Prometheus did not answer, or not with what the overview asked for."""


class PrometheusOverview:
    def __init__(self, base_url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        if self._session is None:
            # Its own session: Prometheus is the operator's own service on the internal network,
            # not a URL anyone saved (the egress guard's session would refuse it).
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self._base + path, params=params) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PrometheusUnavailable(f"Prometheus at {self._base} did not answer: {type(exc).__name__}: {exc}") from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise PrometheusUnavailable(f"Prometheus at {self._base} refused the query: {error or body!r}"[:300])
        result = (body.get("data") or {}).get("result")
        if not isinstance(result, list):
            raise PrometheusUnavailable(f"Prometheus at {self._base} answered no result list")
        return result

    async def series(self, minutes: int, now: float) -> dict[str, list[list[Any]]]:
        """``[minute start, value]`` pairs for the last ``minutes`` minutes, oldest first, ending
        with the current minute (the shape of ``MinuteSeries.series``)."""
        current = int(now // 60) * 60
        starts = list(range(current - 60 * (minutes - 1), current + 1, 60))
        # a minute's point is evaluated at its end (the increase over that minute)
        window = {"start": str(starts[0] + 60), "end": str(current + 60), "step": "60"}
        results = await asyncio.gather(
            *(self._get("/api/v1/query_range", {"query": query, **window}) for query in QUERIES.values())
        )
        out: dict[str, list[list[Any]]] = {}
        for name, result in zip(QUERIES, results, strict=True):
            values: dict[int, float] = {}
            for row in result:
                for at, value in row.get("values") or ():
                    number = _number(value)
                    if number is not None:
                        minute = int(float(at)) - 60
                        values[minute] = values.get(minute, 0.0) + number
            empty = 0 if name in _COUNTS else None
            out[name] = [[m, round(values[m]) if m in values else empty] for m in starts]
        return out

    async def now(self) -> dict[str, int]:
        results = await asyncio.gather(*(self._get("/api/v1/query", {"query": q}) for q in NOW_QUERIES.values()))
        return {
            name: int(sum(_number(row.get("value", [0, "0"])[1]) or 0.0 for row in result))
            for name, result in zip(NOW_QUERIES, results, strict=True)
        }


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number

