"""Prometheus metrics of a Parley process, served at ``/metrics``.

Metric objects live in the default registry; recording is cheap and never raises into callers.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "EVENTS", "ANSWER_SECONDS", "ANSWER_BUCKETS", "HANDLER_SECONDS", "LLM_SECONDS", "LLM_FIRST_TOKEN_SECONDS", "LLM_TOKENS",
    "LLM_ERRORS", "TOOL_SECONDS", "TOOL_ERRORS", "DEAD_LETTERS", "TURNS_IN_FLIGHT",
    "WEBSOCKET_CONNECTIONS", "CONSUMER_LAG", "CONSUMER_FETCH_PAUSE", "CONSUMER_WAKEUPS", "CONSUMER_FETCHES", "USAGE_TURNS", "USAGE_TOKENS", "render", "CONTENT_TYPE_LATEST",
]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

#: Bounds of ``parley_answer_seconds`` (what a person waits for, so coarser than the stages').
ANSWER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120)
ANSWER_SECONDS = Histogram(
    "parley_answer_seconds", "Time from a user's message to the model's final reply (processor).",
    buckets=ANSWER_BUCKETS,
)
EVENTS = Counter("parley_events", "Events consumed (in) and produced (out) per topic.", ["topic", "direction"])
HANDLER_SECONDS = Histogram(
    "parley_handler_seconds", "Time to handle one event, per stage.", ["stage"], buckets=_LATENCY_BUCKETS
)
LLM_SECONDS = Histogram(
    "parley_llm_seconds", "Duration of one model call.", ["provider", "model"], buckets=_LATENCY_BUCKETS
)
LLM_FIRST_TOKEN_SECONDS = Histogram(
    "parley_llm_first_token_seconds", "Time from call to first streamed text.", ["provider", "model"],
    buckets=_LATENCY_BUCKETS,
)
LLM_TOKENS = Counter("parley_llm_tokens", "Tokens used, by kind (prompt, completion).", ["provider", "model", "kind"])
LLM_ERRORS = Counter("parley_llm_errors", "Model calls that failed after retries.", ["provider", "model"])
TOOL_SECONDS = Histogram("parley_tool_seconds", "Duration of one tool call.", ["tool"], buckets=_LATENCY_BUCKETS)
TOOL_ERRORS = Counter("parley_tool_errors", "Tool calls that returned an error result.", ["tool"])
DEAD_LETTERS = Counter("parley_dead_letters", "Events sent to dead-letters, per stage.", ["stage"])
TURNS_IN_FLIGHT = Gauge("parley_turns_in_flight", "Events being handled now, per agent.", ["agent"])
WEBSOCKET_CONNECTIONS = Gauge("parley_websocket_connections", "Open chat websockets.")
USAGE_TURNS = Counter("parley_usage_turns", "Answered turns per application and chatbot.", ["application", "chatbot"])
USAGE_TOKENS = Counter(
    "parley_usage_tokens", "Model tokens per application, chatbot and kind.", ["application", "chatbot", "kind"]
)
CONSUMER_LAG = Gauge(
    "parley_consumer_lag", "Messages behind the end of each assigned partition.", ["topic", "partition"]
)

CONSUMER_FETCH_PAUSE = Gauge(
    "parley_consumer_fetch_pause_seconds",
    "Pause of an idle consumer before its next fetch (0 while data flows; see PARLEY_CONSUMER_IDLE_FETCH_WAIT_MS).",
)
CONSUMER_WAKEUPS = Counter(
    "parley_consumer_wakeups", "Times a produce from this process ended the consumer's idle pause."
)
CONSUMER_FETCHES = Counter(
    "parley_consumer_fetches", "Fetch requests the consumer made, by whether they returned records.", ["result"]
)


def render() -> bytes:
    return generate_latest()
