"""Sustained turns per second through the doors users use, one worker, echo model, archive on.

    .venv/bin/python bench/throughput.py --seconds 20 --concurrency 200

Starts `parley dev` (one process: gateway and worker, embedded broker and document server) and
measures, one after the other for ``--seconds`` each:

- ``webhook``: ``--concurrency`` senders each POST a message to the generic webhook and wait for
  its reply at the application's ``callback_url`` (a receiver in this process), then send the next;
- ``websocket``: ``--concurrency`` sockets each send a message and wait for the final reply.

Prints turns/s, p50/p99 of send -> reply, CPU seconds per turn of Parley, of the embedded
broker and document server and of this benchmark's own client, Parley's system calls and
consumer fetches per turn (counts that other load on the machine does not change), and checks in
the archive that every turn was archived exactly once (one user message and one reply each).
``--profile DIR`` records Parley and the document server with py-spy (``pip install py-spy``)
into DIR/<door>-<process>.txt (collapsed stacks). As the ceiling, measured in the same run: the raw produce + consume rate of
the embedded broker with aiokafka, with producer batches as `parley dev` makes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from common import DevProcess, cpu_seconds, process_tree, start_profile, summary, syscalls  # noqa: E402

ADMIN_KEY = "bench-admin-key"


class Callbacks:
    """The application's callback URL: resolves the waiter of each reply's ``in_reply_to``."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.replies = 0
        self.port = 0

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/cb", self.receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.replies += 1
        waiter = self.waiting.pop(body.get("conversation_id", ""), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(time.perf_counter())
        return web.json_response({"ok": True})


async def webhook_load(http: str, seconds: float, concurrency: int, run: str) -> tuple[int, list[float], list[str]]:
    callbacks = Callbacks()
    runner = await callbacks.start()
    async with aiohttp.ClientSession() as session:
        async with session.put(
            f"{http}/v1/admin/applications/bench-hook", headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            json={"name": "bench webhook", "chatbot_id": "demo", "callback_url": f"http://127.0.0.1:{callbacks.port}/cb"},
        ) as response:
            assert response.status in (200, 201), await response.text()
        await asyncio.sleep(0.5)
        latencies: list[float] = []
        conversations: list[str] = []
        deadline = time.perf_counter() + seconds

        async def sender(index: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                conversation = f"{run}-hook-{index}-{n}"  # one turn per conversation: no ordering waits
                waiter = asyncio.get_running_loop().create_future()
                callbacks.waiting[conversation] = waiter
                t0 = time.perf_counter()
                async with session.post(f"{http}/v1/webhooks/generic/bench-hook",
                                        json={"conversation_id": conversation, "id": f"m-{n}", "text": "hi"}) as r:
                    if r.status != 202:
                        callbacks.waiting.pop(conversation, None)
                        await asyncio.sleep(float(r.headers.get("Retry-After", "0.5")))
                        continue
                latencies.append(await asyncio.wait_for(waiter, 60) - t0)
                conversations.append(conversation)
                n += 1

        await asyncio.gather(*(sender(i) for i in range(concurrency)))
    await runner.cleanup()
    return len(latencies), latencies, conversations


async def websocket_load(url: str, seconds: float, concurrency: int, run: str) -> tuple[int, list[float], list[str]]:
    import websockets

    latencies: list[float] = []
    conversations: list[str] = []
    deadline = time.perf_counter() + seconds

    async def socket(index: int) -> None:
        conversation = f"{run}-ws-{index}"
        async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "hello", "application_id": "demo", "conversation_id": conversation}))
            assert json.loads(await ws.recv())["type"] == "ready"
            n = 0
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await ws.send(json.dumps({"type": "message", "id": f"m-{n}", "text": f"turn {n}"}))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if frame["type"] == "message" and frame.get("role") == "assistant":
                        break
                    if frame["type"] == "error":
                        raise RuntimeError(frame)
                latencies.append(time.perf_counter() - t0)
                n += 1
        conversations.append(conversation)

    await asyncio.gather(*(socket(i) for i in range(concurrency)))
    return len(latencies), latencies, conversations


async def archived(mongo_url: str, prefix: str) -> dict[str, int]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(mongo_url)
    try:
        pipeline = [{"$match": {"conversation_id": {"$regex": f"^{re.escape(prefix)}"}}},
                    {"$group": {"_id": "$role", "n": {"$sum": 1}}}]
        return {doc["_id"]: doc["n"] async for doc in await client["parley"]["messages"].aggregate(pipeline)}
    finally:
        await client.close()


async def broker_ceiling(kafka_url: str, n: int) -> float:
    """Records/s of produce + consume on a fresh topic, batched as `parley dev` produces."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    servers = kafka_url.removeprefix("kafka://")
    topic = f"bench-ceiling-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=servers, max_batch_size=16384, linger_ms=0)
    await producer.start()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, auto_offset_reset="earliest",
                                fetch_max_wait_ms=10, group_id=None)
    await producer.send_and_wait(topic, b"warm-up", key=b"k")
    await consumer.start()
    t0 = time.perf_counter()

    async def produce() -> None:
        futures = [await producer.send(topic, b"x" * 200, key=str(i).encode()) for i in range(n)]
        await asyncio.gather(*futures)

    async def consume() -> None:
        seen = 0
        while seen < n + 1:
            batch = await consumer.getmany(timeout_ms=200)
            seen += sum(len(records) for records in batch.values())

    await asyncio.gather(produce(), consume())
    elapsed = time.perf_counter() - t0
    await producer.stop()
    await consumer.stop()
    return n / elapsed


def fetches(http: str) -> tuple[float, float]:
    """(fetches that returned records, empty fetches) so far, from the worker's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"{http}/metrics", timeout=10) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    found = dict.fromkeys(("records", "empty"), 0.0)
    for line in text.splitlines():
        match = re.match(r'parley_consumer_fetches_total\{result="(\w+)"\} (\S+)', line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found["records"], found["empty"]


def name_of(pid: int) -> str:
    """"broker" or "documents" for the embedded servers (by their command line)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return str(pid)
    return "broker" if b"tansu" in cmdline else "documents" if b"secantus" in cmdline else str(pid)


def servers_from_log(dev: DevProcess) -> tuple[str, str]:
    text = dev.log_path.read_text()
    kafka = re.search(r"broker (kafka://\S+?),", text)
    mongo = re.search(r"documents (mongodb://\S+?),", text)
    assert kafka and mongo, "parley dev did not print its servers"
    return kafka.group(1), mongo.group(1) + "?directConnection=true"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--ceiling-records", type=int, default=20_000)
    parser.add_argument("--only", choices=("webhook", "websocket"))
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--profile", metavar="DIR", help="record each door with py-spy (installed "
                        "separately: pip install py-spy) into DIR/<door>.txt, collapsed stacks")
    args = parser.parse_args()
    # the callback receiver listens on loopback: the operator allow-list lets Parley call it
    env = {"PARLEY_ADMIN_API_KEY": ADMIN_KEY, "PARLEY_EGRESS_ALLOW": "127.0.0.0/8", **dict(item.split("=", 1) for item in args.env)}
    dev = DevProcess(env=env).start()
    run = f"tp-{uuid.uuid4().hex[:6]}"
    try:
        kafka_url, mongo_url = servers_from_log(dev)
        assert dev.proc is not None
        tree = process_tree(dev.proc.pid)
        servers = {name_of(pid): pid for pid in tree if pid != dev.proc.pid}  # broker, documents
        print(f"parley dev at {dev.http}, echo model, cpu_cores={os.cpu_count()}, "
              f"{args.concurrency} concurrent senders, {args.seconds:g} s per door; "
              f"load average {os.getloadavg()[0]:.2f}")
        asyncio.run(websocket_load(dev.ws, 2, 20, f"{run}-warm"))
        for door in ("webhook", "websocket"):
            if args.only and door != args.only:
                continue
            spies = [start_profile(args.profile, f"{door}-{name}", pid)
                     for name, pid in [("parley", dev.proc.pid), ("documents", servers.get("documents", 0))] if pid] if args.profile else []
            before = {name: cpu_seconds([pid]) for name, pid in servers.items()}
            before_parley, before_client = cpu_seconds([dev.proc.pid]), time.process_time()
            calls_before, fetches_before = syscalls(dev.proc.pid), fetches(dev.http)
            t0 = time.perf_counter()
            if door == "webhook":
                turns, latencies, _conversations = asyncio.run(webhook_load(dev.http, args.seconds, args.concurrency, run))
            else:
                turns, latencies, _conversations = asyncio.run(websocket_load(dev.ws, args.seconds, args.concurrency, run))
            wall = time.perf_counter() - t0
            parley_cpu = cpu_seconds([dev.proc.pid]) - before_parley
            client_cpu = time.process_time() - before_client
            reads, writes = (after - before for after, before in zip(syscalls(dev.proc.pid), calls_before, strict=True))
            server_cpu = {name: cpu_seconds([pid]) - before[name] for name, pid in servers.items()}
            for spy in spies:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            time.sleep(1.5)  # the last archive writes
            counts = asyncio.run(archived(mongo_url, f"{run}-{'hook' if door == 'webhook' else 'ws'}-"))
            per_turn = 1000 / max(1, turns)
            print(f"--- {door}: {turns} turns in {wall:.1f} s = {turns / wall:.0f} turns/s")
            print(summary("send -> reply", latencies))
            print(f"CPU per turn: parley {parley_cpu * per_turn:.2f} ms, embedded servers "
                  f"{sum(server_cpu.values()) * per_turn:.2f} ms ("
                  + ", ".join(f"{name} {cpu * per_turn:.2f}" for name, cpu in sorted(server_cpu.items()))
                  + f"), bench client {client_cpu * per_turn:.2f} ms (parley at {parley_cpu / wall * 100:.0f}% of a core)")
            others_ms = (sum(server_cpu.values()) + client_cpu) * per_turn
            print(f"what is not Parley's ({others_ms:.2f} CPU ms per turn) caps {os.cpu_count()} cores at "
                  f"{(os.cpu_count() or 1) * 1000 / max(others_ms, 1e-9):.0f} turns/s even if Parley cost nothing")
            with_records, empty = (after - before for after, before in zip(fetches(dev.http), fetches_before, strict=True))
            print(f"parley system calls per turn: {reads * per_turn / 1000:.1f} reads, {writes * per_turn / 1000:.1f} writes; "
                  f"consumer fetches: {(with_records + empty) / wall:.0f}/s ({with_records * per_turn / 1000:.2f} "
                  f"with records and {empty * per_turn / 1000:.2f} empty per turn)")
            exact = counts.get("user") == turns and counts.get("assistant") == turns
            print(f"archive: {counts.get('user', 0)} user messages, {counts.get('assistant', 0)} replies for "
                  f"{turns} turns -> {'every turn archived exactly once' if exact else 'MISMATCH'}")
        ceiling = asyncio.run(broker_ceiling(kafka_url, args.ceiling_records))
        print(f"ceiling: raw broker produce + consume with aiokafka: {ceiling:.0f} records/s "
              f"(a turn is at least 3 records: incoming, outgoing, usage); "
              f"load average {os.getloadavg()[0]:.2f}")
    finally:
        dev.stop()
        print(f"server log: {dev.log_path} ({dev.log_lines('Traceback')} tracebacks, "
              f"{dev.log_lines('ERROR')} ERROR lines)")


if __name__ == "__main__":
    main()
