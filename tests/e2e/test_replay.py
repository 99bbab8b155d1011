"""``parley replay`` and ``parley dlq`` as an operator runs them: child processes against the
session's embedded broker and document server, while the session worker answers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer

from parley.streams.codec import message_id
from tests.e2e.test_pipeline import archived, dead_letters
from tests.support.wsclient import ChatClient


async def parley(services: dict[str, Any], *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PARLEY_KAFKA_URL": services["broker"].url,
        "PARLEY_MONGO_URL": services["documents"].url,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "parley", *args],
        env=env, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def replayed(mongo_db: Any, replay_id: str, role: str, count: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    docs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        docs = list(mongo_db.messages.find({"replay_id": replay_id, "role": role}))
        if len(docs) >= count:
            return docs
        time.sleep(0.1)
    raise AssertionError(f"expected {count} {role} messages of replay {replay_id}, found {docs!r}")


async def frames_for(client: ChatClient, seconds: float) -> list[dict[str, Any]]:
    """Every frame the client receives within ``seconds``."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(await client.recv(timeout_s=left))
        except TimeoutError:
            break
    return frames


async def chat(worker: Any, texts: list[str]) -> tuple[ChatClient, list[str]]:
    client = await ChatClient.connect(worker.ws)
    event_ids = []
    for text in texts:
        turn = await client.turn(text)
        assert turn.final is not None
        event_ids.append(turn.ack["event_id"])
    return client, event_ids


async def test_replay_regenerates_answers_without_delivery_and_twice_sends_nothing(worker, services, mongo_db):
    texts = ["first question", "second question", "third question"]
    client, originals = await chat(worker, texts)
    conversation = client.conversation_id
    try:
        archived(mongo_db, conversation, 6)
        replay_id = f"test-{uuid.uuid4().hex[:8]}"
        out = ok(await parley(services, "replay", "--conversation", conversation, "--replay-id", replay_id, "--yes"))
        assert f"replay id: {replay_id}" in out
        assert "3 new events sent" in out, out

        answers = replayed(mongo_db, replay_id, "assistant", 3)
        expected = {message_id(replay_id, e) for e in originals}
        assert {a["in_reply_to"] for a in answers} == expected
        assert sorted(a["text"] for a in answers) == sorted(f"You said: {t}" for t in texts)
        assert {u["_id"] for u in replayed(mongo_db, replay_id, "user", 3)} == expected
        # The originals are untouched and still unmarked.
        assert mongo_db.messages.count_documents({"_id": {"$in": originals}, "replay_id": None}) == 3

        # The client connected to the conversation got no final message from the replay.
        frames = await frames_for(client, 1.5)
        assert [f for f in frames if f["type"] == "message"] == [], frames

        # The same replay id again: nothing new.
        again = ok(await parley(services, "replay", "--conversation", conversation, "--replay-id", replay_id, "--yes"))
        assert "0 new events sent (3 already sent by this replay id)" in again, again
        await asyncio.sleep(2.0)
        assert mongo_db.messages.count_documents({"replay_id": replay_id}) == 6
        record = mongo_db.replays.find_one({"_id": replay_id})
        assert record["status"] == "done" and record["sent_count"] == 3 and record["runs"] == 2
        assert record["params"]["conversations"] == [conversation] and record["params"]["deliver"] is False
        assert mongo_db.replay_events.count_documents({"replay_id": replay_id}) == 3

        # With --deliver, a new replay id reaches the client.
        deliver_id = f"test-{uuid.uuid4().hex[:8]}"
        out = ok(await parley(
            services, "replay", "--conversation", conversation, "--replay-id", deliver_id, "--deliver", "--yes"
        ))
        assert "3 new events sent" in out, out
        delivered: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while len(delivered) < 3 and time.monotonic() < deadline:
            frame = await client.recv(timeout_s=deadline - time.monotonic())
            if frame["type"] == "message":
                delivered.append(frame)
        assert {f["in_reply_to"] for f in delivered} == {message_id(deliver_id, e) for e in originals}
        assert sorted(f["text"] for f in delivered) == sorted(f"You said: {t}" for t in texts)
    finally:
        await client.close()


async def test_a_replay_without_deliver_streams_nothing_to_the_client(worker, services, mongo_db):
    client, _ = await chat(worker, ["quiet please"])
    try:
        replay_id = f"quiet-{uuid.uuid4().hex[:8]}"
        ok(await parley(services, "replay", "--conversation", client.conversation_id, "--replay-id", replay_id, "--yes"))
        replayed(mongo_db, replay_id, "assistant", 1)  # the replayed turn is over
        frames = await frames_for(client, 1.0)
        assert frames == [], [f["type"] for f in frames]
    finally:
        await client.close()


async def test_replay_dry_run_lists_a_time_range_and_sends_nothing(worker, services, mongo_db):
    client, _ = await chat(worker, ["before the cut"])
    try:
        await asyncio.sleep(1.0)
        cut = time.time()
        await asyncio.sleep(0.5)
        for text in ("after the cut", "also after the cut\nwith a second line " + "x" * 80):
            turn = await client.turn(text)
            assert turn.final is not None
    finally:
        await client.close()
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cut)) + f".{int(cut % 1 * 1e6):06d}Z"
    replay_id = f"dry-{uuid.uuid4().hex[:8]}"
    out = ok(await parley(
        services, "replay", "--conversation", client.conversation_id, "--since", since,
        "--replay-id", replay_id, "--dry-run",
    ))
    lines = [line for line in out.splitlines() if client.conversation_id in line]
    assert len(lines) == 2, out
    partition, offset, conversation, _event_id, text = lines[0].split("\t")
    assert int(partition) >= 0 and int(offset) >= 0 and conversation == client.conversation_id
    assert text == "after the cut"
    assert lines[1].split("\t")[4] == "also after the cut with a second line " + "x" * 21 + "…"
    assert "dry run replay" in out and "2 new events would be sent" in out
    await asyncio.sleep(1.5)
    assert mongo_db.messages.count_documents({"replay_id": replay_id}) == 0
    assert mongo_db.replays.find_one({"_id": replay_id}) is None

    # Offsets: the first message's own offset, and nothing after it.
    by_offset = ok(await parley(
        services, "replay", "--conversation", client.conversation_id, "--from-offset", "0",
        "--to-offset", offset, "--dry-run",
    ))
    selected = [line.split("\t")[4] for line in by_offset.splitlines() if client.conversation_id in line]
    assert selected == ["before the cut", "after the cut"]


async def test_replay_refuses_without_confirmation_and_with_other_parameters(worker, services):
    client, _ = await chat(worker, ["something to scan"])
    await client.close()
    result = await parley(services, "replay", "--conversation", "nobody-here", "--replay-id", "needs-yes")
    # Nothing matches, but the topic has records to scan: a non-interactive run must confirm.
    assert result.returncode == 1 and "pass --yes" in result.stderr, result
    replay_id = f"params-{uuid.uuid4().hex[:8]}"
    ok(await parley(services, "replay", "--conversation", "nobody-here", "--replay-id", replay_id, "--yes"))
    other = await parley(services, "replay", "--conversation", "someone-else", "--replay-id", replay_id, "--yes")
    assert other.returncode == 1 and "other parameters" in other.stderr, other
    both = await parley(services, "replay", "--from-offset", "1", "--since", "2025-01-01", "--dry-run")
    assert both.returncode == 2 and "not both" in both.stderr


async def test_dead_letters_list_show_replay_and_purge(worker, services):
    garbage = b"\xff still not json " + uuid.uuid4().hex.encode()
    expected = base64.b64encode(garbage).decode()
    key = f"dlq-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=services["broker"].url.removeprefix("kafka://"))
    await producer.start()
    try:
        await producer.send_and_wait("incoming", garbage, key=key.encode())
    finally:
        await producer.stop()
    # The processor cannot decode it (and neither can the persister, which archives incoming).
    first = await dead_letters(
        services["broker"].url, lambda d: d["original_b64"] == expected and d["stage"] == "processor"
    )

    raw_list = await parley(services, "dlq", "list", "--json", "--limit", "0")
    listed = [json.loads(line) for line in ok(raw_list).splitlines()]
    mine = [d for d in listed if d["original_b64"] == expected and d["stage"] == "processor"]
    assert [d["dead_letter_id"] for d in mine] == [first["dead_letter_id"]]
    assert mine[0]["error_type"] == "DecodeError"
    assert "not JSON" in mine[0]["error"] and mine[0]["key"] == key and mine[0]["replayed_at"] is None
    table = ok(await parley(services, "dlq", "list", "--stage", "processor", "--limit", "0"))
    row = next(line for line in table.splitlines() if first["dead_letter_id"] in line)
    assert "DecodeError" in row and f"incoming[{first['partition']}]@{first['offset']}" in row and key in row

    dead_letter_id = first["dead_letter_id"]
    shown = ok(await parley(services, "dlq", "show", dead_letter_id))
    assert repr(garbage) in shown and "DecodeError" in shown and f"'{key}'" in shown
    missing = await parley(services, "dlq", "show", "no-such-letter")
    assert missing.returncode == 1 and "no dead letter" in missing.stderr

    out = ok(await parley(services, "dlq", "replay", dead_letter_id))
    assert "1 dead letters replayed" in out and "as-is" in out
    # Still garbage: dead-lettered again, with the same bytes and key.
    second = await dead_letters(
        services["broker"].url,
        lambda d: d["original_b64"] == expected and d["stage"] == "processor"
        and d["dead_letter_id"] != dead_letter_id,
    )
    assert second["key"] == key

    refused = await parley(services, "dlq", "replay", dead_letter_id)
    assert refused.returncode == 1 and "already replayed" in refused.stderr and "--force" in refused.stderr
    assert "1 dead letters would be replayed" in ok(await parley(services, "dlq", "replay", dead_letter_id, "--force", "--dry-run"))

    before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(first["failed_at"] + 0.001))
    before += f".{int((first['failed_at'] + 0.001) % 1 * 1e6):06d}Z"
    assert (await parley(services, "dlq", "purge", "--before", before)).returncode == 1  # no --yes
    assert "purged" in ok(await parley(services, "dlq", "purge", "--before", before, "--yes"))
    ids = {json.loads(line)["dead_letter_id"] for line in ok(await parley(services, "dlq", "list", "--json", "--limit", "0")).splitlines()}
    assert dead_letter_id not in ids and second["dead_letter_id"] in ids
    everything = ok(await parley(services, "dlq", "list", "--json", "--limit", "0", "--all"))
    purged = [json.loads(line) for line in everything.splitlines() if dead_letter_id in line]
    assert purged and purged[0]["purged_at"] is not None and purged[0]["replay_count"] == 1


async def test_replaying_a_failed_model_call_answers_it_again_without_delivery(worker, services, mongo_db):
    client = await ChatClient.connect(worker.ws)
    try:
        turn = await client.turn("llm-down for a moment", timeout_s=30)
        assert turn.final is not None and turn.final["text"].startswith("Sorry")
        letter = await dead_letters(
            services["broker"].url,
            lambda d: d["stage"] == "processor.llm" and d["key"] == f"demo/{client.conversation_id}",
        )
        out = ok(await parley(services, "dlq", "replay", letter["dead_letter_id"]))
        assert "as replay event" in out, out
        # The fake model still fails on this text: the replay is answered (with an apology again),
        # archived under the replay id, and not delivered.
        replay_id = f"dlq:{letter['dead_letter_id']}"
        answers = replayed(mongo_db, replay_id, "assistant", 1)
        assert answers[0]["is_error"] and answers[0]["in_reply_to"] != turn.ack["event_id"]
        frames = await frames_for(client, 1.0)
        assert [f for f in frames if f["type"] == "message"] == [], frames
    finally:
        await client.close()
