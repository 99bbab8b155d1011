"""The egress guard inside the HTTP client: an aiohttp session that connects only where
``parley.egress.EgressPolicy`` allows.

- ``GuardedResolver`` resolves a name and returns only addresses the policy allows (a name with
  one refused address is refused whole). aiohttp connects to exactly what the resolver returned,
  so the address checked is the address used: no DNS rebinding between check and connection.
  The URL keeps its host name, so the ``Host`` header and the TLS server name (SNI, certificate
  check) are the name's, as without the guard.
- ``GuardedConnector`` checks each request's URL first (scheme, IP literals in every spelling:
  aiohttp does not resolve those, so the resolver never sees them), for every hop a caller might
  follow.
- ``guarded_session(policy)`` is the one session per process the channels (and any HTTP tool)
  call platforms with; ``policy_of(session)`` gives its policy, and ``None`` for a session
  without the guard, which ``parley.channels.base`` refuses to call through.

A refusal raises ``parley.egress.EgressRefused`` (not an ``OSError``: aiohttp would turn that
into a connection error, which callers retry).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from parley.egress import EgressPolicy

__all__ = ["GuardedConnector", "GuardedResolver", "guarded_session", "policy_of"]


class GuardedResolver(AbstractResolver):
    """Resolves through ``policy.lookup`` (or aiohttp's default resolver) and returns only the
    addresses the policy allows."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self._inner: AbstractResolver | None = None if policy.lookup is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        url = f"//{host}:{port}"
        if self.policy.allows_host(host) and self._inner is not None:
            return await self._inner.resolve(host, port, family)
        if self._inner is None:
            addresses = await self.policy.resolve(url, host, port)
            return [_result(host, address, port) for address in addresses]
        results = await self._inner.resolve(host, port, family)
        for result in results:
            self.policy.check_address(url, host, ipaddress.ip_address(result["host"].split("%", 1)[0]))
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return {
        "hostname": host, "host": address, "port": port, "family": family,
        "proto": 0, "flags": socket.AI_NUMERICHOST,
    }


class GuardedConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` whose every connection passes the policy."""

    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        super().__init__(resolver=GuardedResolver(policy), **kwargs)
        self.policy = policy

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        self.policy.check_url(str(req.url))
        return await super().connect(req, traces, timeout)


def guarded_session(policy: EgressPolicy, **kwargs: Any) -> aiohttp.ClientSession:
    """A client session that calls only what ``policy`` allows (no proxies from the environment:
    a proxy would make the connection's address the proxy's)."""
    return aiohttp.ClientSession(connector=GuardedConnector(policy), trust_env=False, **kwargs)


def policy_of(session: aiohttp.ClientSession) -> EgressPolicy | None:
    connector = session.connector
    return connector.policy if isinstance(connector, GuardedConnector) else None
