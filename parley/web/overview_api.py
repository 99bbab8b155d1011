"""``GET /v1/admin/overview?minutes=60``: turns, answer times and errors per minute, and now:
dead letters on the topic, consumer lag, open chat websockets, turns in the last minute. From
Prometheus when ``PARLEY_PROMETHEUS_URL`` is set (every worker and gateway:
``parley.web.overview_prometheus``; ``scope`` ``pipeline``), else, or while Prometheus does not
answer, this process's own (``parley.overview.MinuteSeries``, sampled while the web app runs;
``scope`` ``process``). See docs/admin-api.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import web

from parley.overview import MAX_MINUTES, SAMPLE_INTERVAL_S, MinuteSeries, current
from parley.ports import DeadLetterRefused
from parley.retry import ThrottledLog
from parley.web.admin import ADMIN_PREFIX, AdminError, no_store_json
from parley.web.keys import DEPS, SETTINGS
from parley.web.operators import operator_for
from parley.web.overview_prometheus import PrometheusOverview, PrometheusUnavailable

__all__ = ["add_overview_routes", "SERIES"]

logger = logging.getLogger(__name__)

SERIES = web.AppKey("overview_series", MinuteSeries)
PROMETHEUS = web.AppKey("overview_prometheus", PrometheusOverview)
_PROMETHEUS_LOG = web.AppKey("overview_prometheus_log", ThrottledLog)
_SAMPLER: web.AppKey[asyncio.Task[None]] = web.AppKey("overview_sampler")
#: how long the overview waits for the dead-letters count (then answers null)
DEAD_LETTER_COUNT_TIMEOUT_S = 5.0


def add_overview_routes(app: web.Application) -> None:
    app[SERIES] = MinuteSeries()
    prometheus_url = app[SETTINGS].prometheus_url
    if prometheus_url:
        app[PROMETHEUS] = PrometheusOverview(prometheus_url)
        app[_PROMETHEUS_LOG] = ThrottledLog(logger)

        async def close_prometheus(app: web.Application) -> None:
            await app[PROMETHEUS].close()

        app.on_cleanup.append(close_prometheus)
    app.router.add_get(ADMIN_PREFIX + "/overview", overview)
    app.on_startup.append(_start_sampling)
    app.on_cleanup.append(_stop_sampling)


async def _sample_forever(series: MinuteSeries) -> None:
    while True:
        try:
            series.sample()
        except Exception as exc:  # noqa: BLE001 - the overview must never break the server
            logger.debug("overview sample failed: %s", exc)
        await asyncio.sleep(SAMPLE_INTERVAL_S)


async def _start_sampling(app: web.Application) -> None:
    app[_SAMPLER] = asyncio.create_task(_sample_forever(app[SERIES]), name="parley.overview")


async def _stop_sampling(app: web.Application) -> None:
    task = app.get(_SAMPLER)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _dead_letter_count(request: web.Request) -> int | None:
    desk = request.app[DEPS].dead_letters
    if desk is None:
        return None
    try:
        letters = await asyncio.wait_for(desk.letters(), DEAD_LETTER_COUNT_TIMEOUT_S)
    except (TimeoutError, DeadLetterRefused, OSError) as exc:
        logger.info("overview: dead letters not counted: %s", exc)
        return None
    return sum(1 for letter in letters if letter.get("purged_at") is None)


async def overview(request: web.Request) -> web.Response:
    await operator_for(request, action="read")
    raw = request.query.get("minutes", "60")
    try:
        minutes = int(raw)
    except ValueError:
        minutes = 0
    if not 1 <= minutes <= MAX_MINUTES:
        raise AdminError(400, "invalid_parameter", f"minutes must be an integer from 1 to {MAX_MINUTES}, got {raw!r}")
    answer: dict[str, Any] = {"minute_s": 60}
    prometheus = request.app.get(PROMETHEUS)
    figures: tuple[dict[str, Any], dict[str, int]] | None = None
    if prometheus is not None:
        try:
            series, gauges = await asyncio.gather(prometheus.series(minutes, time.time()), prometheus.now())
            figures = series, gauges
            answer["scope"] = "pipeline"
        except PrometheusUnavailable as exc:
            request.app[_PROMETHEUS_LOG].warning("overview: %s; showing this process's own figures", exc)
            answer["prometheus_error"] = str(exc)
    if figures is None:
        figures = request.app[SERIES].series(minutes), current()
        answer["scope"] = "process"
    series, gauges = figures
    turns = series["turns"]
    answer["series"] = series
    answer["now"] = {
        "dead_letters": await _dead_letter_count(request),
        **gauges,
        "turns_per_minute": turns[-2][1] if len(turns) > 1 else turns[-1][1],
    }
    return no_store_json(answer)
