"""Load through the websocket, as clients behave: a connect burst, a reconnect storm, idle sockets.

    .venv/bin/python bench/ws_load.py burst --clients 1000 --messages 1 --delay 1.0
    .venv/bin/python bench/ws_load.py reconnect --clients 2000 --window 1.0
    .venv/bin/python bench/ws_load.py idle --clients 10000

Each mode starts its own `parley dev` (embedded broker and document server) answering with the
tests' fake OpenAI-compatible server (in a process of its own, through the real `openai` SDK),
unless `--url` points at a running Parley (then start the fake LLM yourself and lift the rate
limits: PARLEY_WS_MESSAGES_PER_MINUTE, PARLEY_WS_MESSAGE_BURST, PARLEY_WS_APP_MESSAGES_PER_MINUTE=0).

- ``burst``: C clients connect at the same moment; each says ``hello`` on a conversation of its own
  and sends M messages, one after the other's answer. Prints answered/expected, connections
  dropped, error frames by code, p50/p99 send -> final reply, wall time, and as the baseline C
  concurrent calls straight to the fake LLM with the same SDK (the floor a pipeline can reach).
- ``reconnect``: C clients each get one answer, all disconnect, then all reconnect within
  ``--window`` seconds with ``last_message_id`` (a gateway restart). Prints how many got ``ready``
  and their ``resume``, dropped, and p50/p99 connect -> resume; baseline: the same reconnects
  without ``last_message_id`` (hello -> ready only).
- ``idle``: C signed-in sockets connect and stay idle; prints the server's RSS before and after
  (and per socket). Baseline: the RSS of the idle server before any socket.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import websockets  # noqa: E402
from common import (  # noqa: E402
    DevProcess,
    FakeLLMProcess,
    SplitDeployment,
    cpu_seconds,
    direct_llm_calls,
    process_tree,
    rss_bytes,
    start_profile,
    summary,
)

ADMIN_KEY = "bench-admin-key"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    #: burst phases per client, from the moment all clients start: connected, ready, acked
    phases: dict[str, list[float]] = field(default_factory=lambda: {"connected": [], "ready": [], "acked": []})
    answered: int = 0
    dropped: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    close_codes: collections.Counter[str] = field(default_factory=collections.Counter)

    def drop(self, exc: BaseException) -> None:
        self.dropped += 1
        code = getattr(getattr(exc, "rcvd", None), "code", None)
        self.close_codes[str(code) if code is not None else type(exc).__name__] += 1

    def report(self, expected: int) -> None:
        print(f"answered {self.answered}/{expected}, connections dropped {self.dropped}"
              + (f" (closes: {dict(self.close_codes)})" if self.close_codes else ""))
        if self.errors:
            print(f"error frames: {dict(self.errors)}")


async def connect(url: str, timeout_s: float) -> websockets.ClientConnection:
    return await websockets.connect(url, max_size=None, open_timeout=timeout_s, ping_interval=None,
                                    close_timeout=1)


async def recv_until(ws: websockets.ClientConnection, kinds: set[str], tally: Tally, timeout_s: float) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if frame.get("type") == "error":
            tally.errors[frame.get("code", "?")] += 1
            if frame.get("code") in ("rate_limited", "unavailable"):
                await asyncio.sleep(float(frame.get("retry_after") or 0.5))
                return frame
        if frame.get("type") in kinds:
            return frame


async def converse(url: str, conversation_id: str, messages: int, tally: Tally, start: asyncio.Event,
                   timeout_s: float, record: dict[str, str] | None = None) -> None:
    await start.wait()
    began = time.perf_counter()
    try:
        ws = await connect(url, timeout_s)
    except Exception as exc:  # noqa: BLE001 - a refused or timed-out connection is a drop
        tally.drop(exc)
        return
    tally.phases["connected"].append(time.perf_counter() - began)
    try:
        hello = {"type": "hello", "application_id": "demo", "conversation_id": conversation_id}
        while True:
            await ws.send(json.dumps(hello))
            if (await recv_until(ws, {"ready"}, tally, timeout_s)).get("type") == "ready":
                break
        tally.phases["ready"].append(time.perf_counter() - began)
        for n in range(messages):
            message = {"type": "message", "id": f"{conversation_id}-{n}", "text": f"question {n}"}
            t0 = time.perf_counter()
            while True:  # an unavailable or rate_limited frame: send the same id again
                await ws.send(json.dumps(message))
                frame = await recv_until(ws, {"message", "ack"}, tally, timeout_s)
                if frame.get("type") == "ack":
                    if n == 0:
                        tally.phases["acked"].append(time.perf_counter() - began)
                    frame = await recv_until(ws, {"message"}, tally, timeout_s)
                if frame.get("type") == "message" and frame.get("role") == "assistant":
                    break
                if frame.get("type") == "message":  # our own message shown back: keep reading
                    frame = await recv_until(ws, {"message"}, tally, timeout_s)
                    if frame.get("role") == "assistant":
                        break
            tally.latencies.append(time.perf_counter() - t0)
            tally.answered += 1
            if record is not None:
                record[conversation_id] = frame["message_id"]
    except Exception as exc:  # noqa: BLE001 - the connection went away (or timed out)
        tally.drop(exc)
    finally:
        await ws.close()


async def burst(url: str, clients: int, messages: int, timeout_s: float,
                record: dict[str, str] | None = None) -> tuple[Tally, float]:
    tally = Tally()
    start = asyncio.Event()
    run = uuid.uuid4().hex[:6]
    tasks = [asyncio.create_task(converse(url, f"load-{run}-{i}", messages, tally, start, timeout_s, record))
             for i in range(clients)]
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    return tally, time.perf_counter() - t0


async def reconnect(url: str, last: dict[str, str], window_s: float, resume: bool, timeout_s: float) -> Tally:
    tally = Tally()

    async def one(conversation_id: str, last_id: str) -> None:
        await asyncio.sleep(random.uniform(0, window_s))
        t0 = time.perf_counter()
        try:
            ws = await connect(url, timeout_s)
        except Exception as exc:  # noqa: BLE001
            tally.drop(exc)
            return
        try:
            hello = {"type": "hello", "application_id": "demo", "conversation_id": conversation_id}
            if resume:
                hello["last_message_id"] = last_id
            while True:
                await ws.send(json.dumps(hello))
                if (await recv_until(ws, {"ready"}, tally, timeout_s)).get("type") == "ready":
                    break
            if resume:
                frame = await recv_until(ws, {"resume"}, tally, timeout_s)
                if frame.get("type") != "resume" or not frame.get("found"):
                    tally.errors["resume_not_found"] += 1
                    return
            tally.latencies.append(time.perf_counter() - t0)
            tally.answered += 1
        except Exception as exc:  # noqa: BLE001
            tally.drop(exc)
        finally:
            await ws.close()

    await asyncio.gather(*(one(c, m) for c, m in last.items()))
    return tally


async def idle(url: str, clients: int, tokens: list[str], timeout_s: float) -> tuple[list, int]:
    sockets = []
    dropped = 0
    gate = asyncio.Semaphore(200)  # connect 200 at a time: this measures memory, not bursts

    async def one(i: int) -> None:
        nonlocal dropped
        async with gate:
            try:
                ws = await connect(url, timeout_s)
                await ws.send(json.dumps({"type": "hello", "application_id": "bench-idle",
                                          "conversation_id": f"idle-{i}", "token": tokens[i]}))
                while json.loads(await asyncio.wait_for(ws.recv(), timeout_s))["type"] != "ready":
                    pass
                sockets.append(ws)
            except Exception:  # noqa: BLE001
                dropped += 1

    await asyncio.gather(*(one(i) for i in range(clients)))
    return sockets, dropped


class CpuMeter:
    """CPU seconds each process used from its creation to ``report``."""

    def __init__(self, dev: DevProcess | SplitDeployment | None, fake: FakeLLMProcess) -> None:
        self.groups: dict[str, list[int]] = {"bench client": [os.getpid()], "fake LLM": [fake.proc.pid]}
        parley = parley_pids(dev)
        self.groups.update({name: [pid] for name, pid in parley.items()})
        if isinstance(dev, SplitDeployment):
            self.groups["broker + document server + redis"] = [*dev.server_pids, dev.redis.pid]
        elif "parley" in parley:
            self.groups["broker + document server"] = [p for p in process_tree(parley["parley"]) if p != parley["parley"]]
        self.start = {name: cpu_seconds(pids) for name, pids in self.groups.items()}

    def report(self, wall: float) -> str:
        used = {name: cpu_seconds(pids) - self.start[name] for name, pids in self.groups.items()}
        parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in used.items())
        cores = os.cpu_count() or 1
        # the shortest wall these CPU seconds allow: all cores busy, and no process done sooner
        # than its own CPU seconds (Python's GIL: a process runs on about one core at a time)
        floor = max(sum(used.values()) / cores, *used.values())
        return (f"CPU seconds during the run ({wall:.2f} s wall, {cores} cores): {parts}\n"
                f"shortest wall this CPU allows: {floor:.2f} s (all {cores} cores busy, each process on about one)")


def parley_pids(dev: DevProcess | SplitDeployment | None) -> dict[str, int]:
    """Parley's own processes, by name: ``parley`` (one ``parley dev``), or the split's worker and gateway."""
    if isinstance(dev, SplitDeployment):
        return dev.pids
    return {"parley": dev.proc.pid} if dev is not None and dev.proc is not None else {}


def admin(http: str, method: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{http}/v1/admin{path}", method=method, data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {ADMIN_KEY}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read() or b"{}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("burst", "reconnect", "idle"))
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1, help="messages per client (burst)")
    parser.add_argument("--delay", type=float, default=1.0, help="fake LLM seconds per answer")
    parser.add_argument("--window", type=float, default=1.0, help="reconnect storm spread (s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-frame client timeout (s)")
    parser.add_argument("--url", help="a running Parley's ws:// URL (default: start parley dev)")
    parser.add_argument("--split", action="store_true",
                        help="run `parley worker` and `parley web` in processes of their own (with a "
                        "redis-server between them) instead of one `parley dev`")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra setting for the parley dev it starts")
    parser.add_argument("--profile", metavar="DIR", help="burst: record Parley's processes with py-spy "
                        "(installed separately: pip install py-spy) into DIR/burst-<process>.txt")
    args = parser.parse_args()

    fake = FakeLLMProcess(args.delay if args.mode == "burst" else 0.0)
    env = {"PARLEY_LLM_BASE_URL": fake.base_url, "PARLEY_LLM_API_KEY": "test-key",
           "PARLEY_LLM_MODEL": "fake-model", "PARLEY_ADMIN_API_KEY": ADMIN_KEY,
           **dict(item.split("=", 1) for item in args.env)}
    dev: DevProcess | SplitDeployment | None = None
    url = args.url
    try:
        if url is None:
            dev = (SplitDeployment(env=env) if args.split else DevProcess(env=env)).start()
            url = dev.ws
            print(f"{'parley web + parley worker' if args.split else 'parley dev'} at {url}, fake LLM answering after {args.delay if args.mode == 'burst' else 0:g}s, "
                  f"cpu_cores={os.cpu_count()}")
        asyncio.run(burst(url, 20, 1, args.timeout))  # warm-up: connections, caches, model client
        if args.mode == "burst":
            floor, calls = asyncio.run(direct_llm_calls(fake.base_url, args.clients))
            spies = [start_profile(args.profile, f"burst-{name}", pid) for name, pid in parley_pids(dev).items()
                     ] if args.profile else []
            meter = CpuMeter(dev, fake)
            tally, wall = asyncio.run(burst(url, args.clients, args.messages, args.timeout))
            for spy in spies:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            print(f"clients={args.clients} messages_each={args.messages}")
            print(meter.report(wall))
            tally.report(args.clients * args.messages)
            for phase, values in tally.phases.items():
                print(summary(f"start -> {phase}", values))
            print(summary("send -> final reply", tally.latencies))
            print(f"wall (first connect -> last answer): {wall:.2f} s")
            print(summary("baseline: direct SDK call", calls))
            print(f"baseline wall ({args.clients} concurrent calls to the fake LLM): {floor:.2f} s;"
                  f" pipeline / baseline = {wall / floor:.2f}x")
        elif args.mode == "reconnect":
            last: dict[str, str] = {}
            tally, wall = asyncio.run(burst(url, args.clients, 1, args.timeout, record=last))
            print(f"set-up: {tally.answered}/{args.clients} conversations answered in {wall:.1f} s")
            base = asyncio.run(reconnect(url, last, args.window, False, args.timeout))
            storm = asyncio.run(reconnect(url, last, args.window, True, args.timeout))
            print(f"reconnect storm: {len(last)} sockets within {args.window:g} s, hello with last_message_id")
            storm.report(len(last))
            print(summary("connect -> resume", storm.latencies))
            print("baseline: the same storm without last_message_id (connect -> ready)")
            base.report(len(last))
            print(summary("connect -> ready", base.latencies))
        else:
            if dev is None:
                raise SystemExit("idle needs the parley dev it starts (it reads the server's RSS)")
            from parley.web.auth import make_user_token

            secret = "bench-secret-" + uuid.uuid4().hex
            admin(dev.http, "POST", "/applications", {"id": "bench-idle", "name": "bench idle", "chatbot_id": "demo", "secret": secret})
            tokens = [make_user_token(secret, "bench-idle", f"user-{i}", 3600) for i in range(args.clients)]
            time.sleep(1)
            before = rss_bytes(dev.proc.pid)
            sockets, dropped = asyncio.run(_hold(url, args.clients, tokens, args.timeout, dev.proc.pid))
            after, held = sockets
            print(f"idle signed-in sockets: {held}/{args.clients} ready, {dropped} dropped")
            print(f"server RSS: before {before / 2**20:.0f} MiB (baseline: idle, no socket), "
                  f"after {after / 2**20:.0f} MiB, {(after - before) / max(1, held) / 1024:.1f} KiB per socket")
    finally:
        if dev is not None:
            dev.stop()
            print(f"server log: {dev.log_path} ({dev.log_lines('Traceback')} tracebacks, "
                  f"{dev.log_lines('ERROR')} ERROR lines)")
        fake.stop()


async def _hold(url: str, clients: int, tokens: list[str], timeout_s: float, pid: int) -> tuple[tuple[int, int], int]:
    sockets, dropped = await idle(url, clients, tokens, timeout_s)
    await asyncio.sleep(3)
    after = rss_bytes(pid)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return (after, len(sockets)), dropped


if __name__ == "__main__":
    main()
