"""Who a conversation belongs to, answered without reading the archive.

A conversation belongs to whoever sent its first message: a signed-in user (a token) or
anonymous clients. The gateway claims the conversation when it accepts a message, which writes
one record per conversation in the ``conversations`` collection (the first claim wins, so two
gateways claiming at once agree). A ``hello`` reads the record through the cache:

- an owned conversation's record never changes, so it is cached for long
  (``PARLEY_OWNER_CACHE_TTL_S``) and written to the cache by every claim;
- "nobody has claimed it" is cached briefly (``PARLEY_OWNER_NEGATIVE_TTL_S``), and only where
  the cache holds nothing for the key (``Cache.add``), so it never hides a claim another gateway
  cached meanwhile.

Store reads on a cache miss are coalesced per conversation, and go out in batches
(``BulkFinder``: one ``$in`` query for the hellos of a burst), as claims do (``BulkInserter``). A stale "nobody" answer lasts at most the negative TTL, and the claim that
follows (the socket's first message) is checked against the stored record, so the record, not
the cache, has the last word.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from parley.ports import Cache, Owner, OwnerRecords
from parley.singleflight import SingleFlight

__all__ = ["Owner", "ConversationOwners", "owner_record_id", "owner_cache_key"]

logger = logging.getLogger(__name__)

CACHE_FORMAT = "v1"
_NOBODY = b'{"owner": null}'
_MISS = object()


def owner_record_id(application_id: str, conversation_id: str) -> str:
    # ids are letters, digits and _.:@- (parley.validation.require_id): "/" cannot occur
    return f"{application_id}/{conversation_id}"


def owner_cache_key(application_id: str, conversation_id: str) -> str:
    return f"parley:owner:{CACHE_FORMAT}:{owner_record_id(application_id, conversation_id)}"


def _owner_of(record: dict[str, Any]) -> Owner:
    user_id = record.get("user_id")
    return Owner(str(user_id) if record.get("signed_in") and user_id is not None else None)


class ConversationOwners:
    def __init__(
        self,
        records: OwnerRecords,
        cache: Cache,
        *,
        ttl_s: float = 24 * 3600.0,
        negative_ttl_s: float = 2.0,
    ) -> None:
        self._records = records
        self._cache = cache
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._loads: SingleFlight[str, Owner | None] = SingleFlight()

    async def owner(self, application_id: str, conversation_id: str) -> Owner | None:
        """The conversation's owner; None when nobody has claimed it (as far as the cache knows)."""
        key = owner_cache_key(application_id, conversation_id)
        cached = await self._cached(key)
        if cached is not _MISS:
            return cached  # type: ignore[return-value]
        owner = await self._load(application_id, conversation_id)
        if owner is None:
            await self._cache.add(key, _NOBODY, self._negative_ttl_s)
        return owner

    async def claim(self, application_id: str, conversation_id: str, user_id: str | None) -> Owner:
        """Claim the conversation for ``user_id`` (None: anonymous clients) unless it is claimed;
        return its owner, which is the claimant's identity when the claim won."""
        key = owner_cache_key(application_id, conversation_id)
        cached = await self._cached(key)
        if isinstance(cached, Owner):
            return cached
        record = {
            "_id": owner_record_id(application_id, conversation_id),
            "application_id": application_id,
            "conversation_id": conversation_id,
            "user_id": user_id,
            "signed_in": user_id is not None,
            "created_at": time.time(),
        }
        [inserted] = await self._records.insert_owner_records([record])
        owner = Owner(user_id) if inserted else await self._load(application_id, conversation_id)
        if owner is None:  # the record vanished between the insert and the read (deleted by hand)
            raise LookupError(f"conversation {conversation_id!r}: its owner record could not be read")
        await self._remember(key, owner)
        return owner

    async def _cached(self, key: str) -> Owner | object | None:
        """The cached owner, None for a cached "nobody", ``_MISS`` when the cache has no entry."""
        raw = await self._cache.get(key)
        if raw is None:
            return _MISS
        try:
            entry = json.loads(raw)
            return None if entry["owner"] is None else Owner(entry["owner"]["user_id"])
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring an unreadable cache entry %s", key)
            return _MISS

    async def _remember(self, key: str, owner: Owner) -> None:
        entry = {"owner": {"user_id": owner.user_id}}
        await self._cache.set(key, json.dumps(entry).encode(), self._ttl_s)

    async def _load(self, application_id: str, conversation_id: str) -> Owner | None:
        """The stored owner, one read per conversation at a time; an owner found is cached."""
        record_id = owner_record_id(application_id, conversation_id)

        async def read() -> Owner | None:
            record = await self._records.find_owner_record(record_id)
            owner = _owner_of(record) if record is not None else None
            if owner is not None:
                await self._remember(owner_cache_key(application_id, conversation_id), owner)
            return owner

        return await self._loads.run(record_id, read)
