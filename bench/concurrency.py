"""Keyed concurrency of the processor: N conversations, one message each, one worker, against
the tests' fake OpenAI-compatible server answering after a fixed delay per call.

    .venv/bin/python bench/concurrency.py --conversations 1000 --delay 1.0

Starts the embedded broker and document server, the fake LLM and one `parley worker`, produces
one user message per conversation on `incoming` (as the web ingress does) and waits for every
reply on `outgoing`. Prints the wall time, and as baselines measured in the same run: the same
number of concurrent calls made directly to the fake LLM (the floor), and the computed time of
answering one conversation at a time per partition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from parley.embedded import embedded_services  # noqa: E402
from parley.streams.codec import encode  # noqa: E402
from parley.web.ingress import user_event  # noqa: E402
from tests.support.worker import ParleyProcess, free_port, worker_env  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from common import FakeLLMProcess  # noqa: E402


async def direct_llm_floor(base_url: str, n: int) -> float:
    import openai

    client = openai.AsyncOpenAI(api_key="test-key", base_url=base_url, max_retries=0, timeout=60,
                                http_client=openai.DefaultAioHttpClient())  # as the worker does

    async def one(i: int) -> None:
        stream = await client.chat.completions.create(
            model="fake-model", stream=True, messages=[{"role": "user", "content": f"floor {i}"}]
        )
        async for _ in stream:
            pass

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - t0
    await client.close()
    return elapsed


async def pipeline(kafka_url: str, n: int, timeout_s: float) -> tuple[float, float, int]:
    servers = kafka_url.removeprefix("kafka://")
    consumer = AIOKafkaConsumer("outgoing", bootstrap_servers=servers, auto_offset_reset="latest",
                                fetch_max_wait_ms=10, group_id=None)
    await consumer.start()
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5)
    await producer.start()
    run = uuid.uuid4().hex[:8]
    events = [user_event(application_id="demo", conversation_id=f"bench-{run}-{i}", channel="websocket",
                         client_message_id=f"m-{i}", text=f"question {i}") for i in range(n)]
    wanted = {e.event_id for e in events}
    t0 = time.perf_counter()
    futures = [await producer.send("incoming", encode(e), key=e.key.encode())
               for e in events]
    await asyncio.gather(*futures)
    produced = time.perf_counter() - t0
    deadline = time.monotonic() + timeout_s
    answered: set[str] = set()
    duplicates = 0
    while wanted - answered and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            for record in records:
                reply = json.loads(record.value)
                if reply.get("in_reply_to") in wanted:
                    if reply["in_reply_to"] in answered:
                        duplicates += 1
                    answered.add(reply["in_reply_to"])
    wall = time.perf_counter() - t0
    await producer.stop()
    await consumer.stop()
    if wanted - answered:
        raise SystemExit(f"only {len(answered)}/{n} answered within {timeout_s}s")
    return wall, produced, duplicates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=1.0, help="fake LLM seconds per call")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=2048, help="PARLEY_MAX_TURNS_IN_FLIGHT")
    parser.add_argument("--producer-batch-bytes", type=int, default=16384,
                        help="PARLEY_PRODUCER_MAX_BATCH_BYTES of the worker (default: the setting's default, as "
                        "`parley dev` runs; 1: one record per batch)")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    fake = FakeLLMProcess(args.delay)
    with embedded_services(data) as servers:
        port = free_port()
        env = worker_env(
            kafka_url=servers["broker"].url, mongo_url=servers["documents"].url, data_dir=data / "worker",
            port=port, PARLEY_APP_ID=f"bench-{uuid.uuid4().hex[:6]}", PARLEY_LLM_BASE_URL=fake.base_url,
            PARLEY_LLM_API_KEY="test-key", PARLEY_LLM_MODEL="fake-model", PARLEY_LOG_LEVEL="WARNING",
            PARLEY_TOPIC_PARTITIONS=str(args.partitions), PARLEY_MAX_TURNS_IN_FLIGHT=str(args.in_flight),
            PARLEY_PRODUCER_MAX_BATCH_BYTES=str(args.producer_batch_bytes),
        )
        worker = ParleyProcess(["worker"], env, data / "worker.log", port).start()
        try:
            asyncio.run(pipeline(servers["broker"].url, 20, 60))  # warm-up: connections, caches
            floor = asyncio.run(direct_llm_floor(fake.base_url, args.conversations))
            wall, produced, duplicates = asyncio.run(pipeline(servers["broker"].url, args.conversations, 120))
        finally:
            worker.stop()
    fake.stop()
    serial = args.conversations * args.delay / args.partitions
    print(f"conversations={args.conversations} llm_delay={args.delay}s partitions={args.partitions} "
          f"in_flight_limit={args.in_flight} producer_batch_bytes={args.producer_batch_bytes} cpu_cores={os.cpu_count()}")
    print(f"baseline: {args.conversations} concurrent calls straight to the fake LLM: {floor:.2f} s")
    print(f"baseline: one turn at a time per partition (computed): {serial:.1f} s")
    print(f"pipeline: all {args.conversations} answered in {wall:.2f} s (produce took {produced:.2f} s), "
          f"duplicates={duplicates}")
    print(f"pipeline / direct floor = {wall / floor:.2f}x; speed-up vs serial per partition = {serial / wall:.0f}x")


if __name__ == "__main__":
    main()
