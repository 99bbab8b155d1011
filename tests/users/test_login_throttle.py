"""The login throttle counts an attempt before its password is checked, in one atomic step of
the shared cache (a real redis-server) or, when that cannot answer, in the process."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from parley.storage.cache import InMemoryCache, RedisCache
from parley.users.throttle import LoginThrottle
from tests.support.net import free_port


@pytest.fixture(params=["memory", "redis", "redis-down"])
async def cache(request: pytest.FixtureRequest):
    if request.param == "memory":
        yield InMemoryCache()
        return
    url = request.getfixturevalue("redis_url") if request.param == "redis" else f"redis://127.0.0.1:{free_port()}/0"
    redis_cache = RedisCache(url, timeout_s=0.2)
    yield redis_cache
    await redis_cache.close()


async def test_attempts_sent_at_once_pass_only_up_to_the_limit(cache) -> None:
    throttle = LoginThrottle(cache, per_account=3, per_address=100, window_s=60)
    email = f"{uuid.uuid4().hex}@example.com"
    attempts = await asyncio.gather(*(throttle.attempt(email, "10.0.0.1") for _ in range(40)))
    waits = [a.refused_for for a in attempts]
    assert sum(w is None for w in waits) == 3
    assert all(0 < w <= 60 for w in waits if w is not None)


async def test_a_success_clears_the_account_and_gives_the_address_its_attempt_back(cache) -> None:
    throttle = LoginThrottle(cache, per_account=2, per_address=2, window_s=60)
    address = f"10.{uuid.uuid4().int % 250}.0.{uuid.uuid4().int % 250}"
    for n in range(5):  # many people behind one address sign in
        email = f"{uuid.uuid4().hex}-{n}@example.com"
        attempt = await throttle.attempt(email, address)
        assert attempt.refused_for is None
        await attempt.succeeded()
    # failures stay counted: two of them lock the address
    assert (await throttle.attempt("a@example.com", address)).refused_for is None
    assert (await throttle.attempt("b@example.com", address)).refused_for is None
    assert (await throttle.attempt("c@example.com", address)).refused_for is not None


async def test_an_attempt_whose_check_could_not_run_is_taken_back(cache) -> None:
    throttle = LoginThrottle(cache, per_account=1, per_address=100, window_s=60)
    email = f"{uuid.uuid4().hex}@example.com"
    for _ in range(3):  # the document store failed three times: the account is not locked by it
        attempt = await throttle.attempt(email, "10.0.0.3")
        assert attempt.refused_for is None
        await attempt.take_back()
    assert (await throttle.attempt(email, "10.0.0.3")).refused_for is None
    assert (await throttle.attempt(email, "10.0.0.3")).refused_for is not None


async def test_the_window_ends(cache) -> None:
    throttle = LoginThrottle(cache, per_account=1, per_address=100, window_s=0.3)
    email = f"{uuid.uuid4().hex}@example.com"
    assert (await throttle.attempt(email, "10.0.0.2")).refused_for is None
    assert (await throttle.attempt(email, "10.0.0.2")).refused_for is not None
    await asyncio.sleep(0.4)
    assert (await throttle.attempt(email, "10.0.0.2")).refused_for is None
