"""The MongoDB records of replays and dead-letter actions, on the embedded document server."""

from __future__ import annotations

import uuid

import pytest
from pymongo import AsyncMongoClient

from parley.ops.common import OpsError
from parley.ops.dlq import DeadLetterActions
from parley.ops.replay import LEASE_S, MongoReplayLedger


@pytest.fixture
async def database(services):
    client = AsyncMongoClient(services["documents"].url, timeoutMS=10_000)
    name = f"ops-{uuid.uuid4().hex[:8]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


def sent(replay_id: str, *ids: str) -> list[dict]:
    return [{"_id": i, "replay_id": replay_id, "original_event_id": f"o-{i}", "partition": 0, "offset": n}
            for n, i in enumerate(ids)]


async def test_a_replay_is_claimed_by_one_process_at_a_time(database):
    now = [1000.0]
    ledger = MongoReplayLedger(database, clock=lambda: now[0])
    await ledger.begin("r1", {"deliver": False}, {0: 5, 1: 7}, "host:1")
    doc = await ledger.load("r1")
    assert doc["status"] == "running" and doc["end_offsets"] == {"0": 5, "1": 7} and doc["runs"] == 1
    with pytest.raises(OpsError, match="running in host:1"):
        await ledger.begin("r1", {"deliver": False}, {0: 9}, "host:2")
    await ledger.finish("r1", "done", {"sent": 0})
    await ledger.begin("r1", {"deliver": True}, {0: 9}, "host:2")
    doc = await ledger.load("r1")
    # The first run's parameters and end offsets stay: they define the replay.
    assert doc["params"] == {"deliver": False} and doc["end_offsets"] == {"0": 5, "1": 7}
    assert doc["runs"] == 2 and doc["owner"] == "host:2"


async def test_an_abandoned_run_can_be_taken_over_after_its_lease(database):
    now = [1000.0]
    ledger = MongoReplayLedger(database, clock=lambda: now[0])
    await ledger.begin("r1", {}, {}, "crashed:1")
    now[0] += LEASE_S / 2
    await ledger.heartbeat("r1")
    now[0] += LEASE_S - 1
    with pytest.raises(OpsError):
        await ledger.begin("r1", {}, {}, "host:2")
    now[0] += 2
    await ledger.begin("r1", {}, {}, "host:2")
    assert (await ledger.load("r1"))["owner"] == "host:2"


async def test_sent_events_are_recorded_once_per_replay(database):
    ledger = MongoReplayLedger(database)
    await ledger.begin("r1", {}, {}, "h")
    await ledger.record_sent("r1", sent("r1", "a", "b"))
    await ledger.record_sent("r1", sent("r1", "b", "c"))
    assert (await ledger.load("r1"))["sent_count"] == 3
    assert await ledger.sent_ids("r1") == {"a", "b", "c"}
    assert await ledger.sent_ids("r2") == set()
    await ledger.finish("r1", "done", {"sent": 3})
    doc = await ledger.load("r1")
    assert doc["status"] == "done" and "lease_until" not in doc and doc["last_run"] == {"sent": 3}


async def test_a_dead_letter_is_replayed_once_unless_forced(database):
    actions = DeadLetterActions(database, clock=lambda: 50.0)
    assert (await actions.claim_replay("d1", force=False))[0] == 1
    with pytest.raises(OpsError, match="already replayed"):
        await actions.claim_replay("d1", force=False)
    count, before = await actions.claim_replay("d1", force=True)
    assert count == 2 and before["replay_count"] == 1
    await actions.undo_replay("d1", before)
    doc = (await actions.all())["d1"]
    assert doc["replay_count"] == 1 and doc["replayed_at"] == 50.0


async def test_undoing_a_first_replay_makes_it_replayable_again(database):
    actions = DeadLetterActions(database)
    _count, before = await actions.claim_replay("d1", force=False)
    await actions.undo_replay("d1", before)
    assert "replayed_at" not in (await actions.all())["d1"]
    assert (await actions.claim_replay("d1", force=False))[0] == 1


async def test_purge_records_ids_and_keeps_replay_history(database):
    actions = DeadLetterActions(database, clock=lambda: 70.0)
    await actions.claim_replay("d1", force=False)
    await actions.purge(["d1", "d2"])
    await actions.purge([])
    docs = await actions.all()
    assert docs["d1"]["purged_at"] == docs["d2"]["purged_at"] == 70.0
    assert docs["d1"]["replay_count"] == 1
