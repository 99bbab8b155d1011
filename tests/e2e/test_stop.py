"""Stopping an answer part way, through the real pipeline: the websocket's ``stop`` frame
travels on ``incoming`` to the worker that owns the conversation, which cancels the model call;
the partial answer is archived marked ``stopped`` and the next message is answered normally."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.e2e.test_llm_faults import make_application
from tests.support.wsclient import ChatClient


async def until_final(client: ChatClient, on_delta: Any = None, timeout_s: float = 30) -> tuple[list[dict], dict]:
    deltas: list[dict] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        frame = await client.recv(timeout_s=max(0.1, deadline - loop.time()))
        if frame["type"] == "delta":
            deltas.append(frame)
            if on_delta is not None:
                await on_delta(deltas)
        elif frame["type"] == "message" and frame["role"] == "assistant":
            return deltas, frame


async def test_a_stopped_answer_keeps_what_was_streamed_and_the_next_is_answered(worker, mongo_db, fake_llm):
    # 6 words, 0.15 s apart: short enough for the test worker's 1.5 s model timeout
    application_id = make_application(mongo_db, model="drip-6")
    client = await ChatClient.connect(worker.ws, application_id=application_id)
    stopped_at: list[int] = []

    async def stop_after_two(deltas: list[dict]) -> None:
        if len(deltas) == 2 and not stopped_at:
            stopped_at.append(len(deltas))
            await client.send({"type": "stop", "message_id": deltas[0]["message_id"]})

    try:
        await client.send({"type": "message", "id": f"m-{uuid.uuid4().hex[:8]}", "text": "talk a lot"})
        deltas, final = await until_final(client, stop_after_two)
        assert final["stopped"] is True and len(deltas) < 6
        assert final["message_id"] == deltas[0]["message_id"]
        assert final["text"] == "".join(d["text"] for d in deltas)
        assert len(deltas) <= stopped_at[0] + 2, "cancelled within a delta or so of the stop"
        assert final["html"] == f"<p>{final['text'].strip()}</p>"
        archived = mongo_db.messages.find_one({"_id": final["message_id"]})
        assert archived is not None and archived["stopped"] is True and archived["text"] == final["text"]
        await client.send({"type": "message", "id": f"m-{uuid.uuid4().hex[:8]}", "text": "and then?"})
        _, second = await until_final(client)
        assert second["stopped"] is False and "word5" in second["text"]
    finally:
        await client.close()
