"""Runs ``parley worker`` / ``parley dev`` as a real child process for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from parley.embedded import die_with_parent
from tests.support.net import free_port, wait_http_ok


class ParleyProcess:
    def __init__(
        self, args: list[str], env: dict[str, str], log_path: Path, port: int, *, inherit_env: bool = True
    ) -> None:
        self.inherit_env = inherit_env
        self.args = args
        self.env = env
        self.log_path = log_path
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout_s: float = 90.0) -> ParleyProcess:
        full_env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "parley", *self.args],
                env=full_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # a test run killed hard takes its workers with it (call ``start`` from the thread
                # that lives as long as the test: the signal follows the forking thread)
                preexec_fn=die_with_parent,  # noqa: PLW1509 - needed for PDEATHSIG
            )
        try:
            wait_http_ok(f"{self.http}/readyz", timeout_s, self.proc)
        except Exception:  # noqa: BLE001 - any failure to start: stop it and show its log
            self.stop()
            raise RuntimeError(f"parley {self.args} did not become ready:\n{self.log_tail()}") from None
        return self

    def log_tail(self, lines: int = 60, matching: str | None = None, width: int = 400) -> str:
        """The log's last ``lines`` lines (only those matching the regex ``matching``, if given),
        each cut to ``width`` characters."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        if matching is not None:
            text = [line for line in text if re.search(matching, line)]
        return "\n".join(line[:width] for line in text[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError(f"parley did not stop within {timeout_s}s:\n{self.log_tail()}") from None


def worker_env(*, kafka_url: str, mongo_url: str, data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {
        "PARLEY_KAFKA_URL": kafka_url,
        "PARLEY_MONGO_URL": mongo_url,
        "PARLEY_DATA_DIR": str(data_dir),
        "PARLEY_WEB_PORT": str(port),
        "PARLEY_SEED_DEMO": "true",
        "PARLEY_BROKER_SESSION_TIMEOUT_S": "6",
        "PARLEY_BROKER_REBALANCE_TIMEOUT_S": "10",
        "PARLEY_LOG_LEVEL": "INFO",
        # the tests' receivers and fake platforms listen on loopback: allowed the way an operator
        # allows receivers on a private network (tests of the guard itself override it)
        "PARLEY_EGRESS_ALLOW": "127.0.0.0/8,::1/128",
    }
    env.update(extra)
    return env


__all__ = ["ParleyProcess", "worker_env", "free_port"]
