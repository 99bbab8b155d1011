"""CPU of streaming completions on the client side, against the tests' fake LLM.

    .venv/bin/python bench/llm_stream.py --completions 1000 --concurrency 20

For each answer length (the fake model's three-chunk answer, and `words-200`: 200 chunks) it
runs the same completions three ways and prints the CPU time of the client's thread (the fake
server runs in a thread of its own, not counted; with `--server-process`, in a process of its
own, and the whole client process is counted):
- floor: aiohttp posts the request and the SSE lines are parsed with orjson, nothing else;
- parley: `OpenAICompatibleModel.complete` (the SDK builds the request, Parley reads the body);
- sdk chunks: the SDK's own stream, one pydantic object per chunk (what Parley did before).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import openai  # noqa: E402
import orjson  # noqa: E402

from parley.llm.openai_compat import OpenAICompatibleModel  # noqa: E402
from tests.support.fake_llm import FakeLLM  # noqa: E402
from tests.support.net import free_port  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello there"}]
Call = Callable[[], Awaitable[int]]  # one completion; returns its number of text chunks


def floor(base_url: str, model: str, session: aiohttp.ClientSession) -> Call:
    async def call() -> int:
        chunks = 0
        body = {"model": model, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
        headers = {"Authorization": "Bearer test-key"}
        async with session.post(f"{base_url}/chat/completions", json=body, headers=headers) as response:
            async for line in response.content:
                if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
                    chunk = orjson.loads(line[6:])
                    chunks += any(c["delta"].get("content") for c in chunk["choices"])
        return chunks

    return call


def parley(model: OpenAICompatibleModel) -> Call:
    async def call() -> int:
        chunks = 0

        async def on_delta(text: str) -> None:
            nonlocal chunks
            chunks += 1

        await model.complete(MESSAGES, [], on_delta)
        return chunks

    return call


def sdk_chunks(client: openai.AsyncOpenAI, model: str) -> Call:
    async def call() -> int:
        chunks = 0
        stream = await client.chat.completions.create(
            model=model, messages=[], stream=True,
            extra_body={"messages": MESSAGES, "stream_options": {"include_usage": True}},
        )
        async for chunk in stream:
            chunks += any(c.delta.content for c in chunk.choices)
        return chunks

    return call


async def measure(call: Call, n: int, concurrency: int, clock: Callable[[], float]) -> tuple[float, int]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> int:
        async with gate:
            return await call()

    await asyncio.gather(*(one() for _ in range(min(n, 50))))  # warm up: connections, imports
    cpu = clock()
    chunks = sum(await asyncio.gather(*(one() for _ in range(n))))
    return clock() - cpu, chunks


async def main(args: argparse.Namespace, base_url: str) -> None:
    for model_name in ("fake-model", "words-200"):
        model = OpenAICompatibleModel(api_key="test-key", base_url=base_url, model=model_name, timeout_s=30)
        client = openai.AsyncOpenAI(api_key="test-key", base_url=base_url, max_retries=0, timeout=30,
                                    http_client=openai.DefaultAioHttpClient(timeout=30))
        async with aiohttp.ClientSession() as session:
            ways = {"floor": floor(base_url, model_name, session), "parley": parley(model),
                    "sdk chunks": sdk_chunks(client, model_name)}
            for name, call in ways.items():
                clock = time.process_time if args.server_process else time.thread_time
                cpu, chunks = await measure(call, args.completions, args.concurrency, clock)
                print(f"{model_name:<10} {name:<10} {args.completions} completions, {chunks} text chunks: "
                      f"cpu {cpu:6.2f} s = {cpu / args.completions * 1e3:6.2f} ms/completion, "
                      f"{cpu / chunks * 1e6:6.1f} us/chunk")
        await model.close()
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--completions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--server-process", action="store_true", help="run the fake LLM in a process of its own")
    args = parser.parse_args()
    if args.server_process:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.fake_llm", "--port", str(port)],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            asyncio.run(main(args, f"http://127.0.0.1:{port}/v1"))
        finally:
            proc.terminate()
            proc.wait(10)
    else:
        server = FakeLLM(token_gap_s=0.0)
        server.start()
        try:
            asyncio.run(main(args, server.base_url))
        finally:
            server.stop()
