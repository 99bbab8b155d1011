"""CPU an idle `parley dev` costs: the worker process, the embedded broker and the embedded
document server, each as a percentage of one core, read from /proc (utime + stime), so other load
on the machine does not count (it only makes the figures noisier).

    .venv/bin/python bench/idle_cpu.py                     # starts its own `parley dev`
    .venv/bin/python bench/idle_cpu.py --seconds 60
    .venv/bin/python bench/idle_cpu.py --env PARLEY_CONSUMER_IDLE_FETCH_WAIT_MS=0   # baseline

Each run measures, after the server is ready and has settled, ``--seconds`` of idleness. With
``--baseline`` it also runs the same measurement with ``PARLEY_CONSUMER_IDLE_FETCH_WAIT_MS=0``
(a consumer that never slows down while idle: the behaviour before the adaptive wait), so both
figures come from the same run on the same machine.

Then it measures what the first message after a quiet spell (``--quiet`` seconds, long enough
for the pause to reach its cap) costs, ``--first`` times each: a websocket turn (the worker's own
ingress produces it and wakes the consumer), and a message produced onto ``incoming`` by this
benchmark's process, as a separate `parley web` or another worker would (nothing wakes the
consumer: it is seen at the next fetch), timed from the broker's ack to the reply on a websocket
subscribed to the conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, cpu_seconds, process_tree  # noqa: E402

from tests.support.net import free_port  # noqa: E402


def role(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = b" ".join(cmdline).decode(errors="replace")
    if "tansu" in text or " broker " in text:
        return "broker"
    if "secantus" in text:
        return "documents"
    if "parley" in text:
        return "worker"
    return Path(cmdline[0].decode(errors="replace")).name


async def first_after_quiet(port: int, kafka_url: str, quiet_s: float, times: int) -> dict[str, list[float]]:
    """Send->final reply of the first message after ``quiet_s`` of silence: over the websocket,
    and produced by this (another) process."""
    import websockets
    from aiokafka import AIOKafkaProducer

    from parley.streams.codec import encode
    from parley.web.ingress import user_event

    producer = AIOKafkaProducer(bootstrap_servers=kafka_url.removeprefix("kafka://"), max_batch_size=1)
    await producer.start()
    results: dict[str, list[float]] = {"websocket (same process)": [], "produced by another process": []}
    conversation_id = f"idle-{uuid.uuid4().hex[:8]}"
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send(json.dumps({"type": "hello", "application_id": "demo", "conversation_id": conversation_id}))
            assert json.loads(await ws.recv())["type"] == "ready"

            async def final_reply(event_id: str | None) -> None:
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if frame["type"] == "message" and frame.get("role") == "assistant" and (
                        event_id is None or frame.get("in_reply_to") == event_id
                    ):
                        return

            for n in range(times):
                await asyncio.sleep(quiet_s)
                t0 = time.perf_counter()
                await ws.send(json.dumps({"type": "message", "id": uuid.uuid4().hex, "text": f"ws {n}"}))
                await final_reply(None)
                results["websocket (same process)"].append(time.perf_counter() - t0)

                await asyncio.sleep(quiet_s)
                event = user_event(application_id="demo", conversation_id=conversation_id, channel="websocket",
                                   client_message_id=uuid.uuid4().hex, text=f"elsewhere {n}")
                await producer.send_and_wait("incoming", encode(event), key=event.key.encode())
                t0 = time.perf_counter()
                await final_reply(event.event_id)
                results["produced by another process"].append(time.perf_counter() - t0)
    finally:
        await producer.stop()
    return results


def measure(
    env_extra: dict[str, str], seconds: float, settle_s: float, quiet_s: float = 0.0, first: int = 0
) -> tuple[dict[str, float], dict[str, list[float]]]:
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="parley-idle-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update({"PARLEY_LOG_LEVEL": "WARNING", **env_extra})
    log_path = data_dir / "parley.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parley", "dev", "--port", str(port), "--data-dir", str(data_dir)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"parley dev did not become ready; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        time.sleep(settle_s)  # the first commits, table flushes and metadata refreshes
        pids = process_tree(proc.pid)
        before = {pid: cpu_seconds([pid]) for pid in pids}
        t0 = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - t0
        used: dict[str, float] = {}
        for pid in pids:
            name = role(pid)
            used[name] = used.get(name, 0.0) + (cpu_seconds([pid]) - before[pid]) / wall * 100
        latencies: dict[str, list[float]] = {}
        if first:
            found = re.search(r"broker (kafka://\S+),", log_path.read_text(errors="replace"))
            assert found, f"no broker URL in {log_path}"
            latencies = asyncio.run(first_after_quiet(port, found.group(1), quiet_s, first))
        return used, latencies
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def show(label: str, result: tuple[dict[str, float], dict[str, list[float]]]) -> None:
    used, latencies = result
    parts = "  ".join(f"{name}={pct:5.2f}%" for name, pct in sorted(used.items()))
    core = used.get("worker", 0.0) + used.get("broker", 0.0)
    print(f"{label:<34} worker+broker={core:5.2f}% of one core   ({parts})", flush=True)
    for name, values in latencies.items():
        ms = sorted(v * 1000 for v in values)
        print(f"  first message after quiet, {name:<28} -> final reply: median {statistics.median(ms):6.1f} ms  "
              f"max {ms[-1]:6.1f} ms  (each: {' '.join(f'{v:.0f}' for v in ms)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="idle seconds measured (default 30)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds waited after ready (default 10)")
    parser.add_argument("--baseline", action="store_true",
                        help="also measure with PARLEY_CONSUMER_IDLE_FETCH_WAIT_MS=0 (no idle slow-down)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the measured server (repeatable)")
    parser.add_argument("--first", type=int, default=5,
                        help="first messages after a quiet spell measured per path (default 5; 0: none)")
    parser.add_argument("--quiet", type=float, default=3.0, help="seconds of silence before each (default 3)")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    print(f"idle `parley dev`, {args.seconds:.0f} s after {args.settle:.0f} s of settling; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    if args.baseline:
        show("baseline (idle wait off)", measure({**extra, "PARLEY_CONSUMER_IDLE_FETCH_WAIT_MS": "0"},
                                                 args.seconds, args.settle, args.quiet, args.first))
    show("parley dev" + (f" ({' '.join(args.env)})" if args.env else ""),
         measure(extra, args.seconds, args.settle, args.quiet, args.first))


if __name__ == "__main__":
    main()
