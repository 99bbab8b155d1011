"""Moved to ``parley.validation`` (layer 0, so channels need not import the web layer).

Kept only as a re-export for branches written before the move; import ``parley.validation``.
Delete once nothing imports it (``grep -rn "web.validation" parley tests``)."""

from __future__ import annotations

from parley.validation import InputError, optional_str, parse_json_object, require_id, require_text

__all__ = ["InputError", "parse_json_object", "require_id", "require_text", "optional_str"]
