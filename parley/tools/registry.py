"""The tool registry: names, JSON-schema parameters, and a bounded, never-raising ``run``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from parley import metrics

__all__ = ["Tool", "ToolError", "ToolOutcome", "ToolRegistry", "default_registry"]

logger = logging.getLogger(__name__)

MAX_RESULT_CHARS = 8_000


class ToolError(Exception):
    """A tool could not do what was asked; the message is shown to the model."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Awaitable[str]]

    def spec(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True)
class ToolOutcome:
    content: str
    is_error: bool


class ToolRegistry:
    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or ():
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        self._tools[tool.name] = tool

    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self, enabled: list[str] | None = None) -> list[dict[str, Any]]:
        names = self.names() if enabled is None else [n for n in enabled if n in self._tools]
        return [self._tools[n].spec() for n in names]

    async def run(self, name: str, arguments: str, *, timeout_s: float) -> ToolOutcome:
        """Run a tool; every failure becomes an error outcome the model can read."""
        started = time.perf_counter()
        outcome = await self._run(name, arguments, timeout_s)
        label = name if name in self._tools else "unknown"
        metrics.TOOL_SECONDS.labels(label).observe(time.perf_counter() - started)
        if outcome.is_error:
            metrics.TOOL_ERRORS.labels(label).inc()
        return outcome

    async def _run(self, name: str, arguments: str, timeout_s: float) -> ToolOutcome:
        tool = self._tools.get(name)
        if tool is None:
            return ToolOutcome(f"error: unknown tool {name!r}", True)
        try:
            args = json.loads(arguments or "{}")
        except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: absurd nesting
            return ToolOutcome(f"error: arguments are not valid JSON: {exc}", True)
        if not isinstance(args, dict):
            return ToolOutcome("error: arguments must be a JSON object", True)
        try:
            content = await asyncio.wait_for(tool.fn(**args), timeout_s)
        except ToolError as exc:
            return ToolOutcome(f"error: {exc}", True)
        except TypeError as exc:
            return ToolOutcome(f"error: bad arguments for {name}: {exc}", True)
        except TimeoutError:
            return ToolOutcome(f"error: {name} timed out after {timeout_s:g}s", True)
        except Exception as exc:  # noqa: BLE001 - a tool bug must not kill the dispatcher
            logger.exception("tool %s failed", name)
            return ToolOutcome(f"error: {name} failed: {type(exc).__name__}", True)
        return ToolOutcome(content[:MAX_RESULT_CHARS], False)


def default_registry() -> ToolRegistry:
    from parley.tools.builtin import BUILTIN_TOOLS

    return ToolRegistry(list(BUILTIN_TOOLS))
