"""Parley's Faust Kafka transport: a configurable fetch wait, a consumer that stops polling
while idle, and a commit that never skips an event still in flight.

- Faust hard-codes ``fetch_max_wait_ms=1500`` for worker consumers. Brokers that do not wake a
  long poll when data arrives (the embedded one) then add ~0.5 s to every hop, so Parley sets
  the wait from ``Settings.consumer_fetch_wait_ms``.
- Parley's agents ack events out of order (different conversations run concurrently). Faust
  computes the offset to commit from the first run of consecutive acked offsets, and its check
  that this run starts at the head of the partition is off by one (and absent before a
  partition's first commit): with offset 31 still running, or not yet read again after a
  rebalance's re-seek, and 32 acked, it commits 33. A worker that stops or dies, or the next
  rebalance, then loses offset 31 for good. ``_Consumer._new_offset`` commits only a run that
  starts exactly where this consumer started reading the partition (its committed offset, or
  the first offset handed to a stream since the assignment) and never passes an offset still
  being handled.
- An idle consumer need not poll the broker every ``consumer_fetch_wait_ms``: after
  ``EMPTY_FETCHES_BEFORE_PAUSING`` consecutive empty fetches it pauses before the next one, the
  pause doubling up to ``Settings.consumer_idle_fetch_wait_ms`` (``FetchPacer``). The embedded
  broker answers an empty fetch only when its wait is over, even when data arrives meanwhile, so a
  longer broker-side wait could not be cut short; a pause on the client side can. Data in a fetch
  ends the pause, and so does a produce from this process (the web ingress, the agents' outputs):
  Parley's producer wakes the consumer once the broker has acked (``_Producer``).
- Table recovery reads each changelog up to its end offset. The embedded broker reports too small
  an end for a partition whose last batch holds several records, so recovery takes the ends from
  a fetch's high watermark (``_ConsumerThread._highwaters``, ``parley.kafka_offsets``) and
  producers may batch on it too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list
from faust.types import TP
from faust.utils.functional import consecutive_numbers

from parley import metrics
from parley.kafka_offsets import fetched_ends

__all__ = ["EMPTY_FETCHES_BEFORE_PAUSING", "FetchPacer", "Transport", "pace_fetches"]

#: Empty fetches in a row (from one broker) before the consumer starts pausing between fetches:
#: a short gap in the traffic is polled exactly as busy traffic is.
EMPTY_FETCHES_BEFORE_PAUSING = 4


class FetchPacer:
    """How long a consumer waits before its next fetch from a broker.

    While fetches return data (or come back empty only a few times in a row), it does not wait:
    each fetch waits ``fetch_wait_ms`` on the broker, as before. After
    ``EMPTY_FETCHES_BEFORE_PAUSING`` empty fetches in a row it pauses before the next one,
    ``fetch_wait_ms`` at first, doubling with every further empty fetch, so that the time between
    two fetches (pause plus broker wait) never exceeds ``idle_fetch_wait_ms``: that bounds the
    delay of the first message that reaches an idle consumer without waking it (one produced by
    another process). Data ends the pause, and so does ``wake`` (a produce from this process).
    With ``idle_fetch_wait_ms <= fetch_wait_ms`` it never pauses (a broker that wakes long polls,
    such as Kafka, with a long fetch wait).

    Not thread-safe except ``may_pause``: call the rest on the fetcher's event loop.
    """

    def __init__(
        self, fetch_wait_ms: int, idle_fetch_wait_ms: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.short_s = fetch_wait_ms / 1000
        self.max_pause_s = max(0.0, (idle_fetch_wait_ms - fetch_wait_ms) / 1000)
        self._clock = clock
        self._empty: dict[Any, int] = {}  # per broker: empty fetches in a row
        self._resume_at: dict[Any, float] = {}  # per broker: no fetch before this time
        #: how many times ``wake`` was called (a fetch in flight across a wake does not pause)
        self.wakes = 0
        #: True once a broker is about to be paused (read from other threads: a produce wakes
        #: the consumer only then, so busy traffic costs no cross-thread calls)
        self.may_pause = False

    @property
    def enabled(self) -> bool:
        return self.max_pause_s > 0

    def pause_after(self, empty_fetches: int) -> float:
        """Seconds to wait before the next fetch after ``empty_fetches`` empty fetches in a row."""
        if not self.enabled or empty_fetches <= EMPTY_FETCHES_BEFORE_PAUSING:
            return 0.0
        doublings = min(empty_fetches - EMPTY_FETCHES_BEFORE_PAUSING - 1, 32)
        return min(self.max_pause_s, self.short_s * 2**doublings)

    def fetched(self, node: Any, had_data: bool, wakes_before: int) -> float:
        """Record a fetch from ``node`` that returned (``had_data``), sent when ``wakes`` was
        ``wakes_before``; returns the pause before the next fetch from it."""
        if had_data or self.wakes != wakes_before:
            # data flows, or this process produced while the fetch was in flight
            self._empty[node] = 0
            self._resume_at.pop(node, None)
            pause = 0.0
        else:
            empty = self._empty.get(node, 0) + 1
            self._empty[node] = empty
            pause = self.pause_after(empty)
            if pause:
                self._resume_at[node] = self._clock() + pause
            else:
                self._resume_at.pop(node, None)
        self.may_pause = self.enabled and any(
            e >= EMPTY_FETCHES_BEFORE_PAUSING for e in self._empty.values()
        )
        return pause

    def remaining(self, node: Any) -> float:
        """Seconds left before ``node`` may be fetched from again (0: now)."""
        resume_at = self._resume_at.get(node)
        if resume_at is None:
            return 0.0
        left = resume_at - self._clock()
        if left <= 0:
            del self._resume_at[node]
            return 0.0
        return left

    def wake(self) -> None:
        """Data is on its way (this process produced it): fetch from every broker at once, and
        count from zero again."""
        self.wakes += 1
        self._empty.clear()
        self._resume_at.clear()
        self.may_pause = False


def pace_fetches(fetcher: Any, pacer: FetchPacer) -> Callable[[], None]:
    """Make aiokafka's ``Fetcher`` hold back its fetches as ``pacer`` says; returns the function
    that wakes it (call it on the fetcher's event loop).

    aiokafka's fetch routine asks ``_get_actions_per_node`` which fetch to send to which broker,
    runs ``_proc_fetch_request`` for each, and waits for one of them, a seek, a consumed batch or
    ``timeout``. Wrapping these two methods on this one instance (no library class is patched)
    is enough: a held-back broker gets no request, and the routine's wait is cut to the pause;
    ``wake`` ends the pause and completes the future the routine waits on (as a seek does). A new
    assignment and a seek (a rebalance, Faust's recovery; ``seek_to`` is wrapped too) also start
    from zero, so they never wait for a pause.
    """
    get_actions = fetcher._get_actions_per_node
    proc_fetch = fetcher._proc_fetch_request
    seek_to = fetcher.seek_to
    last_assignment: list[Any] = [None]

    def actions(assignment: Any) -> Any:
        if assignment is not last_assignment[0]:
            last_assignment[0] = assignment
            pacer.wake()
        fetch_requests, resets, timeout, invalid_metadata, resume_futures = get_actions(assignment)
        if pacer.enabled and fetch_requests:
            send, held = [], []
            for node_id, request in fetch_requests:
                left = pacer.remaining(node_id)
                if left:
                    held.append(left)
                else:
                    send.append((node_id, request))
            if held:
                fetch_requests = send
                timeout = min([timeout, *held]) if timeout else min(held)
        return fetch_requests, resets, timeout, invalid_metadata, resume_futures

    fetched_data, fetched_nothing = metrics.CONSUMER_FETCHES.labels("records"), metrics.CONSUMER_FETCHES.labels("empty")

    async def proc(assignment: Any, node_id: Any, request: Any) -> bool:
        wakes = pacer.wakes
        had_data = bool(await proc_fetch(assignment, node_id, request))
        (fetched_data if had_data else fetched_nothing).inc()
        pause = pacer.fetched(node_id, had_data, wakes)
        metrics.CONSUMER_FETCH_PAUSE.set(pause)
        return had_data

    def seek(tp: Any, offset: int) -> None:
        seek_to(tp, offset)
        pacer.wake()

    def wake() -> None:
        pacer.wake()
        metrics.CONSUMER_FETCH_PAUSE.set(0)
        metrics.CONSUMER_WAKEUPS.inc()
        fetcher._notify(fetcher._wait_consume_future)

    fetcher._get_actions_per_node = actions
    fetcher._proc_fetch_request = proc
    fetcher.seek_to = seek
    return wake


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    _parley_pacer: FetchPacer | None = None
    _parley_wake: Callable[[], None] | None = None
    _parley_wake_scheduled = False

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.app.conf.parley_fetch_wait_ms
        return consumer

    async def on_start(self) -> None:
        await super().on_start()  # creates and starts the aiokafka consumer and its fetcher
        conf = self.app.conf
        pacer = FetchPacer(conf.parley_fetch_wait_ms, conf.parley_idle_fetch_wait_ms)
        if pacer.enabled and self._consumer is not None:
            self._parley_wake = pace_fetches(self._consumer._fetcher, pacer)
            self._parley_pacer = pacer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        """Faust's table recovery reads each changelog up to these offsets: take them from the
        fetch high watermark (``parley.kafka_offsets``), since the embedded broker reports too
        small an end for a partition whose last batch holds several records."""
        reported = await super()._highwaters(partitions)
        if self.consumer.in_transaction or not any(reported.values()):
            return reported
        transport = self.transport
        assert isinstance(transport, faust_aiokafka.Transport)
        probe = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=server_list(transport.url, transport.default_port),
            client_id=f"{self.app.conf.broker_client_id}-highwaters", group_id=None,
            enable_auto_commit=False, fetch_max_wait_ms=self.app.conf.parley_fetch_wait_ms,
            **credentials_to_aiokafka_auth(self.app.conf.broker_credentials, self.app.conf.ssl_context),
        )
        await probe.start()
        try:
            return await fetched_ends(probe, reported)
        finally:
            await probe.stop()

    def wake_fetches(self) -> None:
        """Data was produced to the broker: end an idle pause now. Any thread; costs nothing
        while the consumer is not about to pause."""
        pacer, wake = self._parley_pacer, self._parley_wake
        if pacer is None or wake is None or not pacer.may_pause or self._parley_wake_scheduled:
            return
        self._parley_wake_scheduled = True

        def run() -> None:
            self._parley_wake_scheduled = False
            wake()

        try:
            self.thread_loop.call_soon_threadsafe(run)
        except RuntimeError:  # the consumer's loop is closed: it is stopping
            self._parley_wake_scheduled = False


class _FirstOffsetSensor(faust.Sensor):
    """Records, per partition, the offset of the first message handed to a stream (Faust calls
    ``on_message_in`` as it starts tracking a message for acks)."""

    def __init__(self, first: dict[TP, int]) -> None:
        super().__init__()
        self._first = first

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        self._first.setdefault(tp, offset)


class _Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: per partition, the first offset handed to a stream since it was assigned
        self._parley_first: dict[TP, int] = {}
        # Faust's streams track messages without calling ``track_message``; its sensors see them.
        self.app.sensors.add(_FirstOffsetSensor(self._parley_first))

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def wake_fetches(self) -> None:
        """This process produced to the broker: a consumer pausing while idle fetches now."""
        thread = self._thread
        if isinstance(thread, _ConsumerThread):
            thread.wake_fetches()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._parley_first.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit for ``tp``: one past the run of consecutive handled offsets that
        starts where this consumer started reading it (the committed offset, or the first offset
        handed to a stream since the partition was assigned), and never past an offset still
        being handled. None when nothing can be committed."""
        acked = self._acked[tp]
        if not acked:
            return None
        self._fill_gaps(tp, acked)
        acked.sort()
        committed = self._committed_offset[tp]
        head = committed if committed is not None else self._parley_first.get(tp)
        if head is None:
            return None  # nothing read since the assignment: where the partition starts is unknown
        while acked and acked[0] < head:  # acks of messages from before a re-seek
            self._acked_index[tp].discard(acked.pop(0))
        if not acked or acked[0] != head:
            return None  # the head of the partition is not handled yet
        run = next(consecutive_numbers(acked))
        end = run[-1] + 1
        running = lowest_unacked_offset(self._unacked_messages, tp)
        if running is not None and running < end:
            end = running  # a duplicate of a running message was acked: stop before it
            if end <= head:
                return None
        acked[:] = [o for o in acked if o >= end]
        self._acked_index[tp].difference_update(range(head, end))
        return end

    def _fill_gaps(self, tp: TP, acked: list[int]) -> None:
        """Offsets that carry no message (transaction markers, compacted records) count as
        handled once a later offset is (as Faust does)."""
        gaps = self._gap[tp]
        if not gaps:
            return
        top = max(acked)
        intervals = sorted(gaps.overlap(0, top), key=lambda i: i.begin)
        if intervals:
            filled = [o for i in intervals for o in range(i.begin, i.end)]
            acked.extend(filled)
            gaps.chop(0, max(filled[-1], top + 1))


def lowest_unacked_offset(messages: Iterable[Any], tp: TP) -> int | None:
    """The lowest offset of ``tp`` among messages delivered to a stream and not acked yet."""
    offsets = [m.offset for m in list(messages) if m.tp == tp and not m.acked]
    return min(offsets) if offsets else None


class _Producer(faust_aiokafka.Producer):
    """Faust's producer, waking this process's consumer when the broker acks a message: the
    events the web ingress and the agents produce are fetched at once even by an idle consumer
    (the only wake-up there is: another process's produce is seen at the next fetch)."""

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        fut = await super().send(*args, **kwargs)
        consumer = getattr(self.app, "_consumer", None)
        if isinstance(consumer, _Consumer) and isinstance(fut, asyncio.Future):
            fut.add_done_callback(lambda done: _wake_on_ack(consumer, done))
        return fut


def _wake_on_ack(consumer: _Consumer, done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is None:
        consumer.wake_fetches()


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer
