"""The agents: thin loops that decode an event, call a handler, and route what it returns.

Every agent is built by ``skeleton.guarded_agent``; a module states its topic, its key and its
handler.
"""

from __future__ import annotations

from parley.agents.skeleton import produce, produce_all, raw_event

__all__ = ["produce", "produce_all", "raw_event"]
