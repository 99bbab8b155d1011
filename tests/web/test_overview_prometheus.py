"""The overview from Prometheus (``PARLEY_PROMETHEUS_URL``): the pipeline's figures, every
worker's and gateway's, through Prometheus' HTTP API (a stand-in server here that answers the
API's documented JSON and records the queries); when Prometheus fails, the process's own
figures, saying why."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from parley.config.store import ConfigStore
from parley.settings import Settings
from parley.storage.documents import DocumentStore
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from parley.web.overview_prometheus import NOW_QUERIES, QUERIES
from tests.support.webapp import AUTH, always_ready, never_produced
from tests.support.webdeps import web_deps

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


class PrometheusAPI:
    """``/api/v1/query_range`` and ``/api/v1/query`` as Prometheus answers them."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.mode = "ok"

    async def query_range(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.queries.append(params)
        if self.mode == "error":
            return web.json_response({"status": "error", "errorType": "bad_data", "error": "parse error"}, status=400)
        if self.mode == "slow":
            await asyncio.sleep(10)
        start, end, step = int(params["start"]), int(params["end"]), int(params["step"])
        points = list(range(start, end + 1, step))
        name = next(n for n, q in QUERIES.items() if q == params["query"])
        if name == "turns":  # two workers, each its own series: summed by the query, not here
            values = [[t, str(10.4 + i)] for i, t in enumerate(points)]
        elif name == "errors":
            values = [[t, "2"] for t in points[-1:]]
        else:  # no answer in the oldest minutes yet: NaN, as histogram_quantile says
            values = [[t, "NaN" if i < 2 else str(1234.6 if name == "answer_p95_ms" else 812.2)] for i, t in enumerate(points)]
        return web.json_response({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}})

    async def query(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        value = {"consumer_lag": "17", "sockets": "4321"}[next(n for n, q in NOW_QUERIES.items() if q == request.query["query"])]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, value]}]}})


@pytest.fixture
async def prometheus() -> Any:
    api = PrometheusAPI()
    app = web.Application()
    app.router.add_get("/api/v1/query_range", api.query_range)
    app.router.add_get("/api/v1/query", api.query)
    server = TestServer(app)
    await server.start_server()
    api.url = str(server.make_url("/")).rstrip("/")  # type: ignore[attr-defined]
    yield api
    await server.close()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, prometheus: Any) -> TestClient:  # noqa: F811
    configured = settings.model_copy(update={"prometheus_url": prometheus.url + "/"})
    deps = web_deps(configs=ConfigStore(documents, configured), documents=documents, archive=documents)
    return await aiohttp_client(create_web_app(settings=configured, deps=deps, ingress=Ingress(never_produced, timeout_s=1), readiness=always_ready))


async def test_the_overview_shows_the_whole_pipeline_from_prometheus(client: TestClient, prometheus: Any) -> None:
    response = await client.get("/v1/admin/overview", params={"minutes": 5}, headers=AUTH)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["scope"] == "pipeline" and "prometheus_error" not in body
    series = body["series"]
    minutes = [m for m, _ in series["turns"]]
    assert len(minutes) == 5 and all(b - a == 60 for a, b in itertools.pairwise(minutes))
    assert [v for _, v in series["turns"]] == [10, 11, 12, 13, 14]  # rounded counts, oldest first
    assert [v for _, v in series["errors"]] == [0, 0, 0, 0, 2]  # a minute without a point is 0
    assert [v for _, v in series["answer_p50_ms"]] == [None, None, 812, 812, 812]  # NaN: no answer
    assert [v for _, v in series["answer_p95_ms"]][-1] == 1235 and not any(isinstance(v, float) and math.isnan(v) for _, v in series["answer_p95_ms"])
    assert body["now"]["consumer_lag"] == 17 and body["now"]["sockets"] == 4321
    assert body["now"]["turns_per_minute"] == 13  # the last whole minute
    ranges = [q for q in prometheus.queries if "step" in q]
    assert {q["query"] for q in ranges} == set(QUERIES.values())
    # each point is the minute that ends at its time: the first ends one minute after the first start
    assert all(int(q["start"]) == minutes[0] + 60 and int(q["end"]) == minutes[-1] + 60 and q["step"] == "60" for q in ranges)


@pytest.mark.parametrize("mode", ["error", "slow"])
async def test_when_prometheus_fails_the_overview_says_so_and_shows_this_process(
    client: TestClient, prometheus: Any, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    prometheus.mode = mode
    response = await client.get("/v1/admin/overview", params={"minutes": 3}, headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["scope"] == "process"
    assert ("parse error" if mode == "error" else "did not answer") in body["prometheus_error"]
    assert len(body["series"]["turns"]) == 3
    assert "showing this process's own figures" in caplog.text


def test_the_prometheus_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="PARLEY_PROMETHEUS_URL"):
        Settings(prometheus_url="prometheus:9090")
