"""End-to-end latency of websocket turns against a running `parley dev` (echo model).

Measures, per turn, send -> first delta and send -> final reply, and as a baseline in the
same run a websocket ping frame answered by the gateway alone (no broker hop).

    make dev &                                   # or: .venv/bin/parley dev --port 8080
    .venv/bin/python bench/e2e_latency.py --url ws://127.0.0.1:8080/ws --turns 500

`--start` launches its own `parley dev` on a free port (and stops it afterwards).
`--fake-llm` instead starts the embedded servers, the tests' fake OpenAI-compatible server and a
`parley worker` answering with it through the real `openai` SDK, and also measures, as a
baseline, the fake server's own time to first token when called directly with the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import BENCH_LIMITS  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(name: str, values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (
        f"{name:<22} n={len(ms):<5} p50={pct(ms, 50):7.2f} ms  p95={pct(ms, 95):7.2f} ms  "
        f"p99={pct(ms, 99):7.2f} ms  mean={statistics.fmean(ms):7.2f} ms"
    )


async def run(url: str, turns: int, conversations: int, warmup: int) -> dict[str, list[float]]:
    first: list[float] = []
    final: list[float] = []
    ping: list[float] = []
    per_conv = max(1, turns // conversations)

    async def one_conversation(index: int) -> None:
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "hello", "application_id": "demo",
                                      "conversation_id": f"bench-{uuid.uuid4().hex[:8]}-{index}"}))
            assert json.loads(await ws.recv())["type"] == "ready"
            for n in range(per_conv + warmup):
                t0 = time.perf_counter()
                await ws.send(json.dumps({"type": "ping"}))
                while (answer := json.loads(await ws.recv()))["type"] != "pong":
                    if answer["type"] == "error":  # e.g. rate_limited: lift the limits of your server
                        raise RuntimeError(f"ping refused: {answer}")
                t_ping = time.perf_counter() - t0
                t0 = time.perf_counter()
                await ws.send(json.dumps({"type": "message", "id": uuid.uuid4().hex, "text": f"turn {n}"}))
                t_first = None
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if frame["type"] == "delta" and t_first is None:
                        t_first = time.perf_counter() - t0
                    elif frame["type"] == "message":
                        t_final = time.perf_counter() - t0
                        break
                    elif frame["type"] == "error":
                        hint = " (raise PARLEY_WS_MESSAGES_PER_MINUTE on the server)" if frame.get("code") == "rate_limited" else ""
                        raise RuntimeError(f"{frame}{hint}")
                if n >= warmup:
                    ping.append(t_ping)
                    first.append(t_first if t_first is not None else t_final)
                    final.append(t_final)

    await asyncio.gather(*(one_conversation(i) for i in range(conversations)))
    return {"first": first, "final": final, "ping": ping}


def start_dev() -> tuple[subprocess.Popen[bytes], str, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data_dir = tempfile.mkdtemp(prefix="parley-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(BENCH_LIMITS)
    log = open(os.path.join(data_dir, "dev.log"), "wb")  # noqa: SIM115 - the child writes to it for its life
    proc = subprocess.Popen([sys.executable, "-m", "parley", "dev", "--port", str(port), "--data-dir", data_dir],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, f"ws://127.0.0.1:{port}/ws", data_dir
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"parley dev did not become ready; see {data_dir}/dev.log")


async def direct_first_token(base_url: str, n: int) -> list[float]:
    import openai

    client = openai.AsyncOpenAI(api_key="test-key", base_url=base_url, max_retries=0, timeout=30)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        stream = await client.chat.completions.create(
            model="fake-model", stream=True, messages=[{"role": "user", "content": f"turn {i}"}]
        )
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - t0
        times.append(first or 0.0)
    await client.close()
    return times


def start_fake_stack(stack):  # type: ignore[no-untyped-def]
    from parley.embedded import embedded_services
    from tests.support.fake_llm import FakeLLM
    from tests.support.worker import ParleyProcess, free_port, worker_env

    data = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    fake = FakeLLM(token_gap_s=0.0)
    fake.start()
    stack.callback(fake.stop)
    servers = stack.enter_context(embedded_services(data))
    port = free_port()
    env = worker_env(
        kafka_url=servers["broker"].url, mongo_url=servers["documents"].url, data_dir=data / "worker",
        port=port, PARLEY_APP_ID="bench-latency", PARLEY_LLM_BASE_URL=fake.base_url,
        PARLEY_LLM_API_KEY="test-key", PARLEY_LLM_MODEL="fake-model", PARLEY_LOG_LEVEL="WARNING",
        **BENCH_LIMITS,
    )
    worker = ParleyProcess(["worker"], env, data / "worker.log", port).start()
    stack.callback(worker.stop)
    return fake, worker.ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8080/ws")
    parser.add_argument("--turns", type=int, default=500, help="measured turns in total")
    parser.add_argument("--conversations", type=int, default=1, help="concurrent conversations")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured turns per conversation")
    parser.add_argument("--start", action="store_true", help="start a `parley dev` of its own")
    parser.add_argument("--fake-llm", action="store_true", help="worker + the tests' fake LLM")
    args = parser.parse_args()
    proc = None
    url = args.url
    direct: list[float] = []
    import contextlib

    with contextlib.ExitStack() as stack:
        if args.fake_llm:
            fake, url = start_fake_stack(stack)
            asyncio.run(direct_first_token(fake.base_url, 20))  # warm-up
            direct = asyncio.run(direct_first_token(fake.base_url, args.turns))
            print(f"started worker with the fake LLM at {url}")
        elif args.start:
            proc, url, data_dir = start_dev()
            print(f"started parley dev at {url} (data {data_dir})")
        try:
            t0 = time.perf_counter()
            results = asyncio.run(run(url, args.turns, args.conversations, args.warmup))
            wall = time.perf_counter() - t0
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    print(f"{len(results['final'])} turns over {args.conversations} conversation(s) in {wall:.2f} s "
          f"({len(results['final']) / wall:.1f} turns/s, sequential per conversation)")
    print(summary("baseline ws ping/pong", results["ping"]))
    print(summary("send -> first delta", results["first"]))
    print(summary("send -> final reply", results["final"]))
    ratio = pct(results["final"], 50) / pct(results["ping"], 50)
    print(f"final-reply p50 / ping p50 = {ratio:.1f}x")
    if direct:
        print(summary("fake LLM first token", direct))
        above = (pct(results["first"], 50) - pct(direct, 50)) * 1000
        print(f"first delta p50 above the fake LLM's own first-token p50: {above:.2f} ms")


if __name__ == "__main__":
    main()
