"""How often an idle worker polls the broker.

The embedded broker answers an empty fetch only when its wait is over, so a consumer that fetches
every 10 ms (what keeps latency low while traffic flows) costs a third of a core doing nothing.
After a few empty fetches in a row it pauses between fetches, longer and longer up to
PARLEY_CONSUMER_IDLE_FETCH_WAIT_MS, which bounds how late the first message after idle is seen.
"""

from __future__ import annotations

from pytest import approx

from parley.kafka_transport import EMPTY_FETCHES_BEFORE_PAUSING, FetchPacer
from parley.settings import Settings

NODE = 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pacer(fetch_wait_ms: int = 10, idle_fetch_wait_ms: int = 500) -> tuple[FetchPacer, Clock]:
    clock = Clock()
    return FetchPacer(fetch_wait_ms, idle_fetch_wait_ms, clock=clock), clock


def empty_fetches(p: FetchPacer, n: int, node: int = NODE) -> list[float]:
    return [p.fetched(node, False, p.wakes) for _ in range(n)]


def test_busy_traffic_and_short_gaps_are_polled_without_pauses():
    p, _ = pacer()
    assert p.fetched(NODE, True, p.wakes) == 0
    assert empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING) == [0.0] * EMPTY_FETCHES_BEFORE_PAUSING
    assert p.remaining(NODE) == 0


def test_the_pause_grows_with_empty_fetches_up_to_the_idle_wait():
    p, _ = pacer(fetch_wait_ms=10, idle_fetch_wait_ms=500)
    pauses = empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING + 12)[EMPTY_FETCHES_BEFORE_PAUSING:]
    assert pauses[:6] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32]
    # broker wait (10 ms) + pause never exceed the idle wait: that bounds the delay of a message
    # produced by another process to an idle worker
    assert max(pauses) == 0.49
    assert pauses[6:] == [0.49] * 6


def test_a_held_back_broker_gets_no_fetch_until_the_pause_is_over():
    p, clock = pacer()
    pause = empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING + 3)[-1]
    assert p.remaining(NODE) == approx(pause)
    clock.now += pause / 2
    assert p.remaining(NODE) == approx(pause / 2)
    clock.now += pause
    assert p.remaining(NODE) == 0


def test_data_ends_the_pause_and_the_count_starts_again():
    p, _ = pacer()
    empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING + 8)
    assert p.fetched(NODE, True, p.wakes) == 0
    assert p.remaining(NODE) == 0
    assert not p.may_pause
    assert empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING + 1)[-1] == 0.01


def test_a_produce_from_this_process_wakes_every_broker_at_once():
    p, _ = pacer()
    empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING + 8, node=0)
    empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING + 8, node=1)
    assert p.may_pause
    p.wake()
    assert p.remaining(0) == 0 and p.remaining(1) == 0
    assert not p.may_pause


def test_a_fetch_in_flight_when_this_process_produced_is_followed_by_no_pause():
    # The fetch left before the message was on the broker and comes back empty: the message is
    # there now, so the next fetch must go at once.
    p, _ = pacer()
    empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING + 8)
    sent_at = p.wakes
    p.wake()
    assert p.fetched(NODE, False, sent_at) == 0
    assert p.remaining(NODE) == 0


def test_brokers_are_paced_separately():
    p, _ = pacer()
    empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING + 3, node=0)
    assert p.fetched(1, True, p.wakes) == 0
    assert p.remaining(0) > 0 and p.remaining(1) == 0


def test_the_consumer_says_when_a_produce_must_wake_it():
    # Only then does a produce cost a call into the consumer's thread; one produced while the
    # count is lower is seen anyway, since the fetch in flight is followed by one with no pause.
    p, _ = pacer()
    empty_fetches(p, EMPTY_FETCHES_BEFORE_PAUSING - 1)
    assert not p.may_pause
    empty_fetches(p, 1)
    assert p.may_pause
    assert empty_fetches(p, 1) == [0.01]


def test_no_pauses_when_the_idle_wait_is_not_longer_than_the_fetch_wait():
    # e.g. Kafka, which wakes long polls, with PARLEY_CONSUMER_FETCH_WAIT_MS=500
    for idle in (0, 500):
        p, _ = pacer(fetch_wait_ms=500, idle_fetch_wait_ms=idle)
        assert not p.enabled
        assert empty_fetches(p, 100) == [0.0] * 100
        assert not p.may_pause


def test_the_defaults_pause_an_idle_worker_for_at_most_half_a_second():
    defaults = Settings()
    p, _ = pacer(defaults.consumer_fetch_wait_ms, defaults.consumer_idle_fetch_wait_ms)
    assert p.enabled
    assert max(empty_fetches(p, 1000)) + defaults.consumer_fetch_wait_ms / 1000 == approx(0.5)
