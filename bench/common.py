"""What the benchmarks share: percentiles, the fake LLM in a process of its own, a `parley dev`
started on a free port, the direct-SDK baseline, and CPU/RSS readings from /proc."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from parley.embedded import die_with_parent  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.worker import ParleyProcess  # noqa: E402

__all__ = [
    "ROOT", "BENCH_LIMITS", "pct", "summary", "FakeLLMProcess", "DevProcess", "direct_llm_calls",
    "cpu_seconds", "rss_bytes", "process_tree", "syscalls", "SplitDeployment", "start_profile",
]

#: A benchmark sends many turns: lift the per-connection and per-application rate limits of the
#: servers it starts (against your own `parley dev`, set these yourself).
BENCH_LIMITS = {
    "PARLEY_WS_MESSAGES_PER_MINUTE": "1000000", "PARLEY_WS_MESSAGE_BURST": "10000",
    "PARLEY_WS_APP_MESSAGES_PER_MINUTE": "0", "PARLEY_WS_FRAMES_PER_MINUTE": "0",
}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(name: str, values_s: list[float]) -> str:
    if not values_s:
        return f"{name:<24} n=0"
    ms = [v * 1000 for v in values_s]
    return (
        f"{name:<24} n={len(ms):<6} p50={pct(ms, 50):8.1f} ms  p95={pct(ms, 95):8.1f} ms  "
        f"p99={pct(ms, 99):8.1f} ms  max={max(ms):8.1f} ms  mean={statistics.fmean(ms):8.1f} ms"
    )


class FakeLLMProcess:
    """The tests' fake OpenAI-compatible server in a process of its own (its CPU is not the
    benchmark client's)."""

    def __init__(self, delay_s: float) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_llm", "--port", str(self.port), "--delay", str(delay_s),
             "--token-gap", "0"],  # the pieces of an answer back to back, as in every recorded figure
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class DevProcess(ParleyProcess):
    """`parley dev` on a free port with its own data directory, the benchmarks' rate limits lifted
    and none of the caller's PARLEY_ settings."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
        base = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        super().__init__(
            ["dev", "--port", str(port), "--data-dir", str(self.data_dir)],
            {**base, **BENCH_LIMITS, "PARLEY_LOG_LEVEL": "WARNING", **(env or {})},
            self.data_dir / "parley.log", port, inherit_env=False,
        )

    def start(self, timeout_s: float = 120) -> DevProcess:
        super().start(timeout_s)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        return super().stop(sig, timeout_s)

    def log_lines(self, needle: str) -> int:
        try:
            return sum(needle in line for line in self.log_path.read_text(errors="replace").splitlines())
        except OSError:
            return 0


class SplitDeployment:
    """A gateway and a worker in processes of their own, as in production: the embedded broker and
    document server, a ``redis-server`` (config cache and the delivery bus between the two
    processes), ``parley worker`` (agents) and ``parley web`` (the doors the clients use).
    ``ws``/``http`` are the gateway's; ``log_path`` the gateway's log, ``worker.log_path``
    the worker's."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        from parley.embedded import embedded_services

        self.data_dir = Path(tempfile.mkdtemp(prefix="parley-bench-split-"))
        self._services = embedded_services(self.data_dir)
        servers = self._services.__enter__()
        self.server_pids = [server.process.pid for server in servers.values()]
        redis_port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        common = {
            **base, **BENCH_LIMITS, "PARLEY_LOG_LEVEL": "WARNING", "PARLEY_SEED_DEMO": "true",
            "PARLEY_KAFKA_URL": servers["broker"].url, "PARLEY_MONGO_URL": servers["documents"].url,
            "PARLEY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", **(env or {}),
        }
        worker_port, web_port = free_port(), free_port()
        self.worker = ParleyProcess(
            ["worker"], {**common, "PARLEY_DATA_DIR": str(self.data_dir / "worker"), "PARLEY_WEB_PORT": str(worker_port)},
            self.data_dir / "worker.log", worker_port, inherit_env=False,
        )
        self.gateway = ParleyProcess(
            ["web"], {**common, "PARLEY_DATA_DIR": str(self.data_dir / "web"), "PARLEY_WEB_PORT": str(web_port)},
            self.data_dir / "web.log", web_port, inherit_env=False,
        )
        self.ws, self.http, self.log_path = self.gateway.ws, self.gateway.http, self.gateway.log_path

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The gateway's process (the one the clients talk to)."""
        return self.gateway.proc

    @property
    def pids(self) -> dict[str, int]:
        return {"worker": self.worker.proc.pid if self.worker.proc else 0,
                "gateway": self.gateway.proc.pid if self.gateway.proc else 0}

    def start(self, timeout_s: float = 120) -> SplitDeployment:
        try:
            self.worker.start(timeout_s)  # the worker's readiness needs Redis: it waits for it
            self.gateway.start(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything that was started, whatever fails on the way."""
        try:
            self.gateway.stop()
        finally:
            try:
                self.worker.stop()
            finally:
                try:
                    self.redis.terminate()
                    self.redis.wait(10)
                finally:
                    self._services.__exit__(None, None, None)

    def log_lines(self, needle: str) -> int:
        total = 0
        for path in (self.gateway.log_path, self.worker.log_path):
            try:
                total += sum(needle in line for line in path.read_text(errors="replace").splitlines())
            except OSError:
                pass
        return total


async def direct_llm_calls(base_url: str, n: int, concurrency: int | None = None) -> tuple[float, list[float]]:
    """``n`` streamed calls straight to the fake LLM with the same SDK and transport as the
    worker, ``concurrency`` at a time (all at once by default): (wall seconds, per-call seconds)."""
    import openai

    client = openai.AsyncOpenAI(api_key="test-key", base_url=base_url, max_retries=0, timeout=120,
                                http_client=openai.DefaultAioHttpClient(timeout=120))
    gate = asyncio.Semaphore(concurrency or n)
    times: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            stream = await client.chat.completions.create(
                model="fake-model", stream=True, messages=[{"role": "user", "content": f"floor {i}"}]
            )
            async for _ in stream:
                pass
            times.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    await client.close()
    return wall, times


def start_profile(directory: str, door: str, pid: int) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (only the thread holding the GIL: idle and waiting threads left
    out) until it gets SIGINT."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                             "--nonblocking", "--gil", "--output", str(Path(directory) / f"{door}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, ValueError, IndexError):
            continue
    return total


def syscalls(pid: int) -> tuple[int, int]:
    """(read, write) system calls the process has made so far (``/proc/<pid>/io``: read/readv
    and write/writev, which is how the event loop reads and writes its sockets): unlike CPU
    time, a count that other load on the machine does not change."""
    counts = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                name, _, value = line.partition(":")
                counts[name] = int(value)
    except OSError:
        return 0, 0
    return counts.get("syscr", 0), counts.get("syscw", 0)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
