"""``GET /v1/admin/overview?minutes=60``: this process's turns, answer times and errors per
minute (``parley.overview.MinuteSeries``, sampled while the web app runs), and now: dead letters
on the topic, consumer lag, open chat websockets, turns in the last minute. See
docs/admin-api.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from parley.overview import MAX_MINUTES, SAMPLE_INTERVAL_S, MinuteSeries, current
from parley.ports import DeadLetterRefused
from parley.web.admin import ADMIN_PREFIX, AdminError, no_store_json
from parley.web.keys import DEPS
from parley.web.operators import operator_for

__all__ = ["add_overview_routes", "SERIES"]

logger = logging.getLogger(__name__)

SERIES = web.AppKey("overview_series", MinuteSeries)
_SAMPLER: web.AppKey[asyncio.Task[None]] = web.AppKey("overview_sampler")
#: how long the overview waits for the dead-letters count (then answers null)
DEAD_LETTER_COUNT_TIMEOUT_S = 5.0


def add_overview_routes(app: web.Application) -> None:
    app[SERIES] = MinuteSeries()
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
    series: dict[str, Any] = request.app[SERIES].series(minutes)
    turns = series["turns"]
    now = {
        "dead_letters": await _dead_letter_count(request),
        **current(),
        "turns_per_minute": turns[-2][1] if len(turns) > 1 else turns[-1][1],
    }
    return no_store_json({"series": series, "now": now, "minute_s": 60, "scope": "process"})
