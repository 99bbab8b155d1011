"""What the agents use of the process's clients, as a Protocol (``parley.runtime.Runtime``
satisfies it; the agent tests put stand-ins on a runtime). The agents never import the runtime:
it is the composition layer, above them."""

from __future__ import annotations

from typing import Any, Protocol

from parley.ports import Archive, Configs
from parley.streams.delivery import DeliveryPorts
from parley.streams.platform_files import FilePorts
from parley.streams.turns import Answerer
from parley.tools import ToolRegistry

__all__ = ["Clients"]


class Clients(Protocol):
    @property
    def model(self) -> Answerer:
        """Answers prompts (the model router, with attached images linked)."""
        ...

    @property
    def tools(self) -> ToolRegistry: ...
    @property
    def configs(self) -> Configs: ...
    @property
    def documents(self) -> Archive: ...

    async def publish(self, application_id: str, conversation_id: str, frame: dict[str, Any]) -> None: ...
    def delivery_ports(self) -> DeliveryPorts: ...
    def file_ports(self) -> FilePorts: ...
