"""Usage windows: hourly counters per chatbot, redeliveries not counted twice, old hours dropped."""

from parley.streams.usage import apply_usage, hour_of, usage_event

T0 = 1_795_600_000.0  # 2026-11-25T08:26:40Z


def event(event_id: str, at: float, chatbot: str = "bot", prompt: int = 10, completion: int = 5, turns: int = 1):
    return usage_event(event_id=event_id, application_id="shop", chatbot_id=chatbot, model="m",
                       prompt_tokens=prompt, completion_tokens=completion, turns=turns, at=at)


def test_counts_add_up_per_hour_and_chatbot():
    value, _ = apply_usage(None, event("e1", T0), 24, now=T0)
    value, _ = apply_usage(value, event("e2", T0 + 60), 24, now=T0)
    value, _ = apply_usage(value, event("e3", T0 + 3600, chatbot="other"), 24, now=T0)
    hours = value["hours"]
    assert hours[hour_of(T0)]["bot"] == {"turns": 2, "prompt_tokens": 20, "completion_tokens": 10}
    assert hours[hour_of(T0 + 3600)]["other"]["turns"] == 1


def test_a_redelivered_event_is_not_counted_twice():
    value, applied = apply_usage(None, event("e1", T0), 24, now=T0)
    again, applied_again = apply_usage(value, event("e1", T0), 24, now=T0)
    assert applied and not applied_again
    assert again["hours"][hour_of(T0)]["bot"]["turns"] == 1


def test_hours_older_than_the_retention_are_dropped():
    value, _ = apply_usage(None, event("old", T0 - 48 * 3600), 24, now=T0)
    value, _ = apply_usage(value, event("new", T0), 24, now=T0)
    assert list(value["hours"]) == [hour_of(T0)]
