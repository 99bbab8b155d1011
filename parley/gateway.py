"""``parley web``: the web gateway alone, scaled separately from the workers.

It serves the same aiohttp application as a worker, produces user messages to ``incoming``
with its own Kafka producer, and receives token deltas and final replies over the Redis bus
(``PARLEY_REDIS_URL`` is required: without it the workers' frames could not reach it).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer

from parley.kafka_admin import bootstrap_servers
from parley.ops.dlq_desk import desk_for
from parley.runtime import Runtime
from parley.settings import Settings
from parley.topics import INCOMING
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from parley.web.server import runner_options

__all__ = ["run_gateway", "GatewayConfigError"]

logger = logging.getLogger(__name__)


class GatewayConfigError(RuntimeError):
    pass


def check_gateway_settings(settings: Settings) -> None:
    missing = [
        f"PARLEY_{name.upper()}"
        for name in ("kafka_url", "mongo_url", "redis_url")
        if getattr(settings, name) is None
    ]
    if missing:
        raise GatewayConfigError(
            f"`parley web` needs {', '.join(missing)}: the gateway produces to Kafka, reads "
            "configs from MongoDB and receives replies from the workers over Redis"
        )


async def run_gateway(settings: Settings, stop: asyncio.Event | None = None) -> None:
    check_gateway_settings(settings)
    assert settings.kafka_url is not None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    runtime = Runtime(settings)
    await runtime.start()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(settings.kafka_url),
        acks="all",
        linger_ms=0,
        max_batch_size=settings.producer_max_batch_bytes,
        request_timeout_ms=int(settings.produce_timeout_s * 1000),
    )
    runner: web.AppRunner | None = None
    try:
        await asyncio.wait_for(producer.start(), settings.produce_timeout_s * 3)

        async def produce(key: str, value: bytes) -> Any:
            return await producer.send_and_wait(INCOMING, value, key=key.encode())

        async def readiness() -> tuple[bool, dict[str, Any]]:
            documents_ok = await runtime.documents.ping()
            brokers = len(producer.client.cluster.brokers())
            checks = {"brokers_known": brokers, "document_store": "ok" if documents_ok else "down"}
            return documents_ok and brokers > 0, checks

        deps = runtime.web_deps()
        deps.dead_letters = desk_for(settings, runtime.documents.database)
        app = create_web_app(
            settings=settings,
            deps=deps,
            ingress=Ingress(produce, settings.produce_timeout_s),
            readiness=readiness,
        )
        runner = web.AppRunner(app, **runner_options())
        await runner.setup()
        site = web.TCPSite(runner, settings.web_host, settings.web_port)
        await site.start()
        print(f"Parley gateway listening on http://{settings.web_host}:{settings.web_port}/", flush=True)
        await stop.wait()
        logger.info("gateway stopping")
    finally:
        if runner is not None:
            await runner.cleanup()
        await producer.stop()
        await runtime.stop()
