"""The agents' stream buffers across a rebalance.

Faust resumes flow twice after a new assignment; the second resume came after the stream
partitions were already being fetched again, and emptied the buffers: the first event after the
committed offset was dropped, and since the consumer had recorded it as read it was neither
answered nor fetched again until the next rebalance.
"""

from __future__ import annotations

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


async def test_stock_flow_control_drops_them():
    # what the test above guards against: Faust's own flow control empties the buffer
    flow = FlowControlEvent()
    queue = buffer(flow)
    flow.resume()
    queue.put_nowait("first event after the committed offset")
    flow.resume()
    assert queue.empty()


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


async def test_the_apps_agent_buffers_use_it():
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
