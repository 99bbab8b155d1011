"""Tools the model can call: a registry and the built-in tools."""

from parley.tools.registry import Tool, ToolError, ToolRegistry, default_registry

__all__ = ["Tool", "ToolError", "ToolRegistry", "default_registry"]
