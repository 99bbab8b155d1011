"""Several messages sent back to back into one conversation, under each double-texting policy."""

from __future__ import annotations

import asyncio
import uuid

from tests.e2e.test_llm_faults import make_application
from tests.support.wsclient import ChatClient


async def send_all(client: ChatClient, texts: list[str], gap_s: float = 0.0) -> list[str]:
    """Send every text without waiting for replies; return the event ids from the acks."""
    ids = [f"m-{uuid.uuid4().hex[:10]}" for _ in texts]
    for client_id, text in zip(ids, texts, strict=False):
        await client.send({"type": "message", "id": client_id, "text": text})
        if gap_s:
            await asyncio.sleep(gap_s)
    return ids


async def collect(client: ChatClient, expected_finals: int, settle_s: float = 1.5, timeout_s: float = 60) -> tuple[dict, list[dict]]:
    """Frames until ``expected_finals`` final messages arrived and then ``settle_s`` of quiet."""
    acks: dict[str, str] = {}
    frames: list[dict] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        finals = sum(1 for f in frames if f["type"] == "message")
        wait = settle_s if finals >= expected_finals else deadline - loop.time()
        try:
            frame = await client.recv(timeout_s=wait)
        except TimeoutError:
            if finals >= expected_finals:
                return acks, frames
            continue
        if frame["type"] == "ack":
            acks[frame["id"]] = frame["event_id"]
        else:
            frames.append(frame)
    raise AssertionError(f"expected {expected_finals} replies, got {frames}")


def user_messages(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


async def test_queue_answers_twenty_back_to_back_messages_in_order_each_once(worker):
    client = await ChatClient.connect(worker.ws)
    try:
        texts = [f"message {i}" for i in range(20)]
        ids = await send_all(client, texts)
        acks, frames = await collect(client, expected_finals=20)
    finally:
        await client.close()
    finals = [f for f in frames if f["type"] == "message"]
    assert [f["in_reply_to"] for f in finals] == [acks[i] for i in ids]
    assert [f["text"] for f in finals] == [f"You said: {t}" for t in texts]
    assert len({f["message_id"] for f in finals}) == 20


async def test_interrupt_stops_the_running_turn_and_answers_everything_at_once(worker, mongo_db, fake_llm):
    application_id = make_application(mongo_db, model="slow-2s", double_texting="interrupt")
    client = await ChatClient.connect(worker.ws, application_id=application_id)
    tag = uuid.uuid4().hex[:6]
    try:
        ids = await send_all(client, [f"first {tag}", f"second {tag}"], gap_s=0.7)
        acks, frames = await collect(client, expected_finals=1, settle_s=3.0)
    finally:
        await client.close()
    finals = [f for f in frames if f["type"] == "message"]
    assert len(finals) == 1, finals
    assert finals[0]["in_reply_to"] == acks[ids[1]]
    assert any(f["type"] == "interrupted" for f in frames)
    last = [r for r in fake_llm.requests if r["model"] == "slow-2s" and f"second {tag}" in user_messages(r)]
    assert user_messages(last[-1])[-2:] == [f"first {tag}", f"second {tag}"]


async def test_merge_turns_a_burst_into_one_answer(worker, mongo_db, fake_llm):
    application_id = make_application(mongo_db, double_texting="merge", merge_window_s=1.0)
    client = await ChatClient.connect(worker.ws, application_id=application_id)
    tag = uuid.uuid4().hex[:6]
    texts = [f"hi {tag}", f"I have a question {tag}", f"about my order {tag}"]
    try:
        ids = await send_all(client, texts, gap_s=0.1)
        acks, frames = await collect(client, expected_finals=1, settle_s=2.0)
    finally:
        await client.close()
    finals = [f for f in frames if f["type"] == "message"]
    assert len(finals) == 1, finals
    assert finals[0]["in_reply_to"] == acks[ids[-1]]
    requests = [r for r in fake_llm.requests if any(tag in m for m in user_messages(r))]
    assert len(requests) == 1
    assert user_messages(requests[0]) == texts
