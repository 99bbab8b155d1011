"""The agents' stream buffers across a rebalance.

Faust resumes flow twice after a new assignment; the second resume came after the stream
partitions were already being fetched again, and emptied the buffers: the first event after the
committed offset was dropped, and since the consumer had recorded it as read it was neither
answered nor fetched again until the next rebalance.
"""

from __future__ import annotations

from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from parley.app import StreamFlowControl, create_app
from parley.settings import Settings


def buffer(flow: FlowControlEvent) -> FlowControlQueue:
    return FlowControlQueue(flow_control=flow, clear_on_resume=True)


async def test_events_buffered_while_flow_is_active_survive_a_second_resume():
    flow = StreamFlowControl()
    queue = buffer(flow)
    flow.resume()  # the recovery resumes flow: the fetcher delivers again
    queue.put_nowait("first event after the committed offset")
    flow.resume()  # the recovery resumes flow again once it has seeked the stream partitions
    assert queue.qsize() == 1
    assert queue.get_nowait() == "first event after the committed offset"


async def test_events_buffered_before_a_rebalance_are_dropped_when_flow_resumes():
    flow = StreamFlowControl()
    queue = buffer(flow)
    flow.resume()
    queue.put_nowait("event of the previous assignment")
    flow.suspend()  # partitions revoked
    assert not flow.is_active()
    flow.resume()  # new assignment
    assert flow.is_active()
    assert queue.empty()


async def test_an_event_fetched_while_fausts_recovery_seeks_stays_in_the_agents_buffer():
    # Faust's own recovery step, with a consumer whose seek lets the fetcher deliver an event
    app = create_app(Settings())
    consumer = app.consumer
    channel = app.topic("incoming").clone(is_iterator=True)  # what an agent's stream reads
    app.flow_control.resume()  # the recovery's first resume (the tables needed no restore)
    consumer.assignment = lambda: {TP("incoming", 0)}
    consumer.resume_partitions = lambda tps: None
    consumer.resume_flow = lambda: None

    async def perform_seek() -> None:
        channel.queue.put_nowait("first event after the committed offset")

    async def fetcher_running() -> None:
        return None

    consumer.perform_seek = perform_seek
    app._fetcher.maybe_start = fetcher_running
    await app.tables.recovery.on_recovery_completed(app.consumer_generation_id)
    assert channel.queue.get_nowait() == "first event after the committed offset"


def test_the_apps_agent_buffers_use_it():
    app = create_app(Settings())
    assert isinstance(app.flow_control, StreamFlowControl)
    assert not app.flow_control.is_active()  # suspended until the first assignment is recovered
    channel = app.topic("incoming").clone(is_iterator=True)
    assert channel.queue._flow_control is app.flow_control


def test_a_worker_without_fausts_compiled_streams_is_warned(monkeypatch, caplog):
    # Faust's pure-Python streams ack the events they skip in a rebalance; the compiled ones do not
    import faust.streams

    from parley.app import warn_without_compiled_streams

    assert not warn_without_compiled_streams()  # the wheel installed here has it
    monkeypatch.setattr(faust.streams, "_CStreamIterator", None)
    assert warn_without_compiled_streams()
    assert "without its compiled stream iterator" in caplog.text
