"""The egress guard: which URLs Parley may call on an application's behalf.

Every outbound URL that comes from an application document or a platform's answer (a generic
channel's ``callback_url``, ``channels.*.api_base``, a platform's file URL, any HTTP tool) passes
``EgressPolicy``:

- parsed by yarl, the parser aiohttp connects with, so the check sees the host aiohttp will use;
- ``https`` only; ``http`` to destinations in the operator's allow-list (``PARLEY_EGRESS_ALLOW``),
  or anywhere with ``PARLEY_EGRESS_ALLOW_HTTP``;
- the host is resolved and every address must be public: loopback, private, link-local,
  multicast, unspecified, shared (CGNAT), documentation and reserved addresses are refused, in
  every spelling (``[::ffff:127.0.0.1]``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``,
  ``127.1``, NAT64/6to4 forms embedding such an address, ``localhost``), unless the address is in
  an allowed network or the host name is allowed.

The static part (``check_url``) runs when a document is saved (``parley.config.models``) and
again before every request; the resolved part runs when a document is saved (``check_resolved``)
and, for every connection, inside the HTTP client's resolver (``parley.channels.egress``), which
hands the connection only the addresses it checked: a name cannot resolve to a public address for
the check and to a private one for the connection. The LLM endpoint is the operator's own
setting and is not guarded.

Foundation layer: no aiohttp, nothing of Parley.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from yarl import URL

if TYPE_CHECKING:
    from parley.settings import Settings

__all__ = [
    "WELL_FORMED",
    "EgressPolicy",
    "EgressRefused",
    "IPAddress",
    "Lookup",
    "Target",
    "parse_allow_entry",
    "system_lookup",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: (host, port) -> the addresses the name resolves to
Lookup = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_CHARS = 2048
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
#: a label that makes the host an IPv4 address to inet_aton (and to getaddrinfo)
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class EgressRefused(ValueError):
    """An outbound URL Parley will not call. Permanent: the same URL is refused again, so a
    delivery refused by the guard is dead-lettered, never retried."""

    permanent = True

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A checked URL: its scheme, host (punycode, lowercase, no brackets), port, and the address
    when the host is an IP literal."""

    scheme: str
    host: str
    port: int
    address: IPAddress | None


def parse_allow_entry(entry: str) -> IPNetwork | str:
    """One ``PARLEY_EGRESS_ALLOW`` entry: a network (``10.0.0.0/8``, ``::1``) or a host name."""
    text = entry.strip().lower()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    name = text.rstrip(".")
    if name and all(_HOST_LABEL.match(label) for label in name.split(".")):
        return name
    raise ValueError(
        f"PARLEY_EGRESS_ALLOW entry {entry!r} is neither a network (10.0.0.0/8, ::1/128) nor a host name"
    )


def _embedded(address: IPAddress) -> IPAddress | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _why_not_public(address: IPAddress) -> str | None:
    """Why ``address`` is not one Parley calls unless allowed (None: it is public)."""
    inner = _embedded(address)
    if inner is not None:
        why = _why_not_public(inner)
        return f"{inner}, {why}" if why else None
    for test, name in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
        ("is_site_local", "site-local"),
    ):
        if getattr(address, test, False):
            return f"{'an' if name[0] in 'aeiou' else 'a'} {name} address"
    if not address.is_global:
        return "not a public address"
    return None


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` read as inet_aton (and so getaddrinfo) reads it: ``2130706433``, ``0x7f000001``,
    ``0177.0.0.1``, ``127.1``; None when it is not a number in any of these spellings."""
    labels = host.rstrip(".").split(".")
    if not 1 <= len(labels) <= 4 or not all(_NUMERIC_LABEL.match(label) for label in labels):
        return None
    try:
        numbers = [int(label, 16) if label.startswith("0x") else int(label, 8 if len(label) > 1 and label[0] == "0" else 10)
                   for label in labels]
    except ValueError:  # "0x", or an octal label with an 8 or 9
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


@dataclass(frozen=True)
class EgressPolicy:
    """The operator's allow-list and the checks. ``lookup`` resolves names (the system resolver
    unless given: tests give names of their own)."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    allow_http: bool = False
    lookup: Lookup | None = field(default=None, compare=False)
    #: False: check only that a URL is a well-formed http(s) URL (documents read back from the
    #: store, whose URLs are checked in full again when they are used)
    check_destinations: bool = True

    @classmethod
    def from_entries(
        cls, entries: Iterable[str], *, allow_http: bool = False, lookup: Lookup | None = None
    ) -> EgressPolicy:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            parsed = parse_allow_entry(entry)
            if isinstance(parsed, str):
                hosts.add(parsed)
            else:
                networks.append(parsed)
        return cls(tuple(networks), frozenset(hosts), allow_http, lookup)

    @classmethod
    def from_settings(cls, settings: Settings, *, lookup: Lookup | None = None) -> EgressPolicy:
        return cls.from_entries(settings.egress_allow, allow_http=settings.egress_allow_http, lookup=lookup)

    # --- what is allowed ------------------------------------------------------------------------
    def allows_host(self, host: str) -> bool:
        return host.rstrip(".").lower() in self.hosts

    def allows_destination(self, host: str) -> bool:
        """Whether ``host`` (a name or an IP literal) is on the operator's allow-list."""
        try:
            return self.allows_address(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            return self.allows_host(host)

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address] + [inner for inner in (_embedded(address),) if inner is not None]
        return any(a.version == n.version and a in n for a in candidates for n in self.networks)

    def check_address(self, url: str, host: str, address: IPAddress) -> None:
        """Refuse ``address`` (which ``host`` is or resolved to) unless public or allowed."""
        if not self.check_destinations or self.allows_host(host) or self.allows_address(address):
            return
        why = _why_not_public(address)
        if why is not None:
            shown = str(address) if host == str(address) else f"{host} ({address})"
            raise EgressRefused(
                url, f"{shown}: {why}, which Parley does not call (add it to PARLEY_EGRESS_ALLOW if the "
                "receiver is yours on a private network)",
            )

    # --- the checks -----------------------------------------------------------------------------
    def check_url(self, url: str) -> Target:
        """Parse ``url`` and refuse what is wrong without resolving it: not an absolute http(s)
        URL with a valid host, http where it is not allowed, a host that is, in any spelling, an
        address Parley does not call, or ``localhost``."""
        if len(url) > MAX_URL_CHARS:
            raise EgressRefused(url, f"the URL is longer than {MAX_URL_CHARS} characters")
        if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
            raise EgressRefused(url, "the URL holds a space or a control character")
        try:
            parsed = URL(url)
            scheme, raw_host, port = parsed.scheme.lower(), parsed.raw_host, parsed.port
        except (ValueError, TypeError, UnicodeError) as exc:
            raise EgressRefused(url, f"not a valid URL ({exc})") from None
        if scheme not in ("https", "http") or not parsed.absolute:
            raise EgressRefused(url, "must be an https:// URL" if self.check_destinations else "must be an http:// or https:// URL")
        if not raw_host:
            raise EgressRefused(url, "the URL has no host")
        if not port:
            raise EgressRefused(url, "the URL has no valid port")
        host = raw_host.lower().strip("[]")
        address = self._literal(url, host)
        if not self.check_destinations:
            return Target(scheme, host, port, address)
        if address is None:
            name = host.rstrip(".")
            if not name or not all(_HOST_LABEL.match(label) for label in name.split(".")):
                raise EgressRefused(url, f"{host!r} is not a valid host name")
            if (name == "localhost" or name.endswith(".localhost")) and not self.allows_host(name):
                raise EgressRefused(
                    url, f"{host} is this machine, which Parley does not call (add it to PARLEY_EGRESS_ALLOW "
                    "if the receiver is yours)",
                )
        else:
            self.check_address(url, host, address)
        if scheme == "http" and not self._http_allowed(host, address):
            raise EgressRefused(
                url, "must be an https:// URL (plain http only to PARLEY_EGRESS_ALLOW destinations, or with "
                "PARLEY_EGRESS_ALLOW_HTTP=true)",
            )
        return Target(scheme, host, port, address)

    async def check_resolved(self, url: str, *, port: int | None = None) -> list[str]:
        """``check_url``, then resolve the host and refuse it if any address is not allowed.
        Returns the addresses; raises ``OSError`` when the name does not resolve."""
        target = self.check_url(url)
        if target.address is not None:
            return [str(target.address)]
        return await self.resolve(url, target.host, port or target.port)

    async def resolve(self, url: str, host: str, port: int) -> list[str]:
        """The addresses of ``host``, every one of them checked; raises ``EgressRefused`` when
        one is refused (a name with one private address is refused whole), ``OSError`` when the
        name does not resolve."""
        addresses = await (self.lookup or system_lookup)(host, port)
        checked: list[str] = []
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            self.check_address(url, host, address)
            checked.append(text)
        return checked

    def _literal(self, url: str, host: str) -> IPAddress | None:
        try:
            return ipaddress.ip_address(host)
        except ValueError:
            pass
        legacy = _legacy_ipv4(host)
        if legacy is None and _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1] or "x"):
            # a last label that is a number makes the host an address to a URL parser: refuse
            # the ones no resolver reads the same way
            raise EgressRefused(url, f"{host!r} is neither a host name nor an IPv4 address")
        return legacy

    def _http_allowed(self, host: str, address: IPAddress | None) -> bool:
        return self.allow_http or self.allows_host(host) or (address is not None and self.allows_address(address))


async def system_lookup(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, through the system resolver (off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen[str(sockaddr[0])] = None
    return list(seen)


#: the policy of a document read back from the store: its URLs must be well-formed, and are
#: checked in full when used
WELL_FORMED = EgressPolicy(check_destinations=False)
