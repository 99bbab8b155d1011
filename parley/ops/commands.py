"""The ops commands wired to the real broker and MongoDB; ``parley.cli`` calls these.

Each returns the process exit code: 0 done, 1 refused or incomplete (the message says why).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TextIO

from parley.ops.common import OpsError, require_services
from parley.ops.dlq import (
    DeadLetterActions,
    list_json,
    load_letters,
    render_list,
    render_show,
    replay_letters,
    select_for_purge,
    select_for_replay,
    show_json,
    visible,
)
from parley.ops.kafka_io import KafkaSink, KafkaSource
from parley.ops.progress import ProgressBar
from parley.ops.replay import MongoReplayLedger, ReplayOptions, run_replay
from parley.settings import Settings

__all__ = ["replay", "dlq_list", "dlq_show", "dlq_replay", "dlq_purge", "kafka_sink", "kafka_source"]


def _mongo_host(url: str) -> str:
    """The URL without credentials or options, for error messages."""
    return url.split("@")[-1].split("?")[0].split("/")[0]


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Any]:
    from pymongo import AsyncMongoClient

    _, mongo_url = require_services(settings)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, serverSelectionTimeoutMS=10_000, connectTimeoutMS=10_000, timeoutMS=60_000
    )
    try:
        try:
            await client.admin.command("ping")
        except Exception as exc:
            raise OpsError(f"cannot reach MongoDB at {_mongo_host(mongo_url)}: {exc}") from exc
        yield client[settings.mongo_database]
    finally:
        await client.close()


def kafka_source(settings: Settings) -> KafkaSource:
    kafka_url, _ = require_services(settings)
    return KafkaSource(kafka_url, fetch_wait_ms=settings.consumer_fetch_wait_ms)


def kafka_sink(settings: Settings) -> KafkaSink:
    kafka_url, _ = require_services(settings)
    return KafkaSink(kafka_url)


async def _ask(prompt: str, stdin: TextIO, err: TextIO) -> bool:
    if not stdin.isatty():
        raise OpsError("not replaying without confirmation: pass --yes (or --dry-run to see what would be sent)")
    err.write(f"{prompt} [y/N] ")
    err.flush()
    answer = await asyncio.to_thread(stdin.readline)
    return answer.strip().lower() in ("y", "yes")


async def replay(
    settings: Settings,
    options: ReplayOptions,
    *,
    yes: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    stdin: TextIO = sys.stdin,
) -> int:
    require_services(settings)

    async def confirm(prompt: str) -> bool:
        return True if yes else await _ask(prompt, stdin, err)

    if options.deliver and not options.dry_run:
        print("parley replay: --deliver: replayed answers WILL reach the original clients and platforms", file=err)
    async with _database(settings) as db, kafka_source(settings) as source:
        async with kafka_sink(settings) as sink:
            summary = await run_replay(
                options,
                source,
                sink,
                MongoReplayLedger(db),
                out=out,
                progress=ProgressBar(err, f"replay {options.topic}"),
                confirm=confirm,
            )
    print(summary.line(), file=out, flush=True)
    return 1 if summary.incomplete else 0


async def _letters(settings: Settings, db: Any) -> list[Any]:
    actions = await DeadLetterActions(db).all()
    async with kafka_source(settings) as source:
        views, _ = await load_letters(source, actions)
    return views


async def dlq_list(
    settings: Settings,
    *,
    stage: str | None,
    limit: int,
    as_json: bool,
    include_purged: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    async with _database(settings) as db:
        views = await _letters(settings, db)
    shown = visible(views, stage=stage, include_purged=include_purged)
    total = len(shown)
    if limit > 0:
        shown = shown[-limit:]
    if as_json:
        for view in shown:
            print(list_json(view), file=out)
        return 0
    if not shown:
        print("no dead letters" + (f" of stage {stage!r}" if stage else ""), file=out)
    else:
        print(render_list(shown), file=out)
    hidden = sum(1 for v in views if v.purged_at is not None) if not include_purged else 0
    note = f"{len(shown)} of {total} dead letters shown, newest last"
    if hidden:
        note += f"; {hidden} purged hidden (--all shows them)"
    if len(shown) < total:
        note += "; --limit 0 shows all"
    print(note, file=out)
    return 0


async def dlq_show(
    settings: Settings, dead_letter_id: str, *, as_json: bool, out: TextIO = sys.stdout
) -> int:
    async with _database(settings) as db:
        views = await _letters(settings, db)
    match = next((v for v in views if v.id == dead_letter_id), None)
    if match is None:
        raise OpsError(f"no dead letter with id {dead_letter_id} on the dead-letters topic")
    print(show_json(match) if as_json else render_show(match), file=out)
    return 0


async def dlq_replay(
    settings: Settings,
    ids: Sequence[str],
    *,
    stage: str | None,
    force: bool,
    deliver: bool,
    dry_run: bool,
    out: TextIO = sys.stdout,
) -> int:
    async with _database(settings) as db:
        views = await _letters(settings, db)
        chosen = select_for_replay(views, ids=ids, stage=stage, force=force)
        if not chosen:
            print("no dead letters to replay" + (f" of stage {stage!r}" if stage else ""), file=out)
            return 0
        async with kafka_sink(settings) as sink:
            done = await replay_letters(
                chosen, sink, DeadLetterActions(db), out=out, force=force, deliver=deliver, dry_run=dry_run
            )
    print(f"{done} dead letters {'would be ' if dry_run else ''}replayed", file=out)
    return 0


async def dlq_purge(
    settings: Settings,
    ids: Sequence[str],
    *,
    before: float | None,
    stage: str | None,
    yes: bool,
    out: TextIO = sys.stdout,
) -> int:
    async with _database(settings) as db:
        views = await _letters(settings, db)
        chosen = select_for_purge(views, ids=ids, before=before, stage=stage)
        if not chosen:
            print("no dead letters to purge", file=out)
            return 0
        if not yes:
            raise OpsError(
                f"purging hides {len(chosen)} dead letters from `parley dlq list`; pass --yes to confirm"
            )
        await DeadLetterActions(db).purge([v.id for v in chosen])
    print(
        f"purged {len(chosen)} dead letters: hidden from `parley dlq list` (the records stay on the "
        "dead-letters topic until its retention removes them)",
        file=out,
    )
    return 0
