"""`parley dev` as a new user runs it: embedded servers, echo model, and a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.net import child_pids, free_port
from tests.support.worker import ParleyProcess
from tests.support.wsclient import ChatClient


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids: list[int], timeout_s: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _dev(tmp_path, app_id: str | None = None) -> ParleyProcess:
    """`parley dev` with no PARLEY_ settings from the caller's environment, as on a laptop."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env["PARLEY_APP_ID"] = app_id or f"parley-dev-test-{port}"
    args = ["dev", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    return ParleyProcess(args, env, tmp_path / "dev.log", port, inherit_env=False).start()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_dev_answers_with_the_echo_model_and_stops_cleanly(tmp_path, stop_signal):
    process = _dev(tmp_path)
    children = child_pids(process.proc.pid)
    try:
        assert len(children) == 2, f"expected broker + document server, got {children}"
        client = await ChatClient.connect(process.ws, application_id="demo")
        try:
            turn = await client.turn("hello parley")
        finally:
            await client.close()
        assert turn.final is not None and turn.final["text"] == "echo: hello parley"
        assert "".join(d["text"] for d in turn.deltas) == "echo: hello parley"
    finally:
        code = process.stop(stop_signal)
    assert code == 0, process.log_tail()
    assert _wait_gone(children) == [], "embedded servers outlived `parley dev`"


async def test_dev_killed_with_sigkill_leaves_no_orphans(tmp_path):
    process = _dev(tmp_path)
    children = child_pids(process.proc.pid)
    assert len(children) == 2
    process.proc.kill()
    process.proc.wait(10)
    assert _wait_gone(children) == [], "embedded servers outlived a killed `parley dev`"


async def test_dev_starts_again_in_the_same_data_dir(tmp_path):
    # the embedded broker keeps its topics in memory; the table stores of the last run must not
    # make the next `make dev` crash (their changelog offsets are ahead of the empty topics)
    for run in ("first run", "second run"):
        process = _dev(tmp_path, app_id="parley")  # the same app each time, as `make dev` runs
        try:
            client = await ChatClient.connect(process.ws, application_id="demo", conversation_id="again")
            try:
                for n in range(3):  # a few table writes, so the stored offsets are past 0
                    turn = await client.turn(f"{run} {n}")
                    assert turn.final is not None and turn.final["text"] == f"echo: {run} {n}"
            finally:
                await client.close()
            if run == "first run":  # a second `parley dev` on the same data dir is refused
                other = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "parley", "dev", "--port", str(free_port()),
                     "--data-dir", str(tmp_path / "data")],
                    env=process.env, capture_output=True, text=True, timeout=60, check=False,
                )
                assert other.returncode == 1 and "another `parley dev` is using" in other.stderr
            else:  # the archive of the first run is kept
                assert "first run 0" in archived_texts(process, "again")
        finally:
            code = process.stop(signal.SIGINT)
        assert code == 0, process.log_tail()


def archived_texts(process: ParleyProcess, conversation_id: str) -> set[str]:
    """The user messages of a conversation in the archive of a running `parley dev`."""
    from pymongo import MongoClient

    banner = [line for line in process.log_path.read_text().splitlines() if line.startswith("Parley dev: broker")]
    url = next(word.rstrip(",") for word in banner[-1].split() if word.startswith("mongodb://"))
    client: MongoClient = MongoClient(url, directConnection=True, timeoutMS=10_000)
    try:
        docs = client["parley"]["messages"].find({"conversation_id": conversation_id, "role": "user"})
        return {d["text"] for d in docs}
    finally:
        client.close()
