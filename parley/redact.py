"""One scrubber for everything Parley writes where people read: log lines, error messages, dead
letters, CLI output.

Two kinds of secret are hidden:
- **URLs**: the userinfo (``http://user:pass@host``) and every query value
  (``?token=…&hub.verify_token=…``) become ``***``; the scheme, host, path and parameter names
  stay, so a line still says where a call went.
- **Known secret values**: the keys in the settings (every ``SecretStr`` field: LLM keys, the
  admin key, S3 keys, the file signing key), and the application secrets and channel
  credentials this process has read from the store. Wherever one appears (a provider that
  echoes the key in its error message, a platform error quoting a token), it becomes ``***``.

The known values are one process-wide set (``SECRETS``): a secret read anywhere must be hidden
everywhere, including in records formatted by libraries, so ``ScrubbingFormatter`` (installed
by the entry point on every log handler) runs every formatted record, traceback included,
through ``scrub``. Values shorter than ``MIN_SECRET_LENGTH`` are not registered (they would
blank out ordinary words).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SECRETS",
    "SECRET_QUERY_PARAMETERS",
    "ScrubbingFormatter",
    "SecretSet",
    "install_log_scrubbing",
    "redact_path",
    "redact_url",
    "register_application_secrets",
    "register_settings_secrets",
    "scrub",
]

MASK = "***"
MIN_SECRET_LENGTH = 6
#: How many dynamic secrets (application secrets, channel credentials) are remembered; the
#: oldest are forgotten first (settings' secrets are never forgotten).
MAX_DYNAMIC_SECRETS = 10_000

#: Query parameters that carry a secret in the requests Parley receives (the access log masks
#: these; ``redact_url`` masks every value).
SECRET_QUERY_PARAMETERS = frozenset({"token", "access_token", "hub.verify_token", "key", "api_key", "signature", "sig"})

#: Names of credential fields inside an application's ``channels`` (and the application's own
#: ``secret``): any string value under a key containing one of these words is registered.
_CREDENTIAL_WORDS = ("token", "secret", "key", "password", "credential")

# A URL inside free text: a scheme, then anything up to whitespace or a closing quote/bracket.
_URL_IN_TEXT = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'"<>()\[\]{}]+""")


class SecretSet:
    """The secret values known to this process; thread-safe (log records come from threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fixed: set[str] = set()
        self._dynamic: OrderedDict[str, None] = OrderedDict()
        self._pattern: re.Pattern[str] | None = None

    def add(self, *values: str | None, fixed: bool = False) -> None:
        with self._lock:
            changed = False
            for value in values:
                if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
                    continue
                if fixed:
                    changed |= value not in self._fixed
                    self._fixed.add(value)
                elif value in self._dynamic:
                    self._dynamic.move_to_end(value)
                else:
                    self._dynamic[value] = None
                    changed = True
                    while len(self._dynamic) > MAX_DYNAMIC_SECRETS:
                        self._dynamic.popitem(last=False)
            if changed:
                self._pattern = None

    def clear(self) -> None:
        with self._lock:
            self._fixed.clear()
            self._dynamic.clear()
            self._pattern = None

    def pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None:
                values = self._fixed | set(self._dynamic)
                if not values:
                    return None
                # Longest first, so a secret that contains another is hidden whole. URL-quoted
                # spellings too: a key may travel inside a query string.
                spellings = values | {quote(v, safe="") for v in values}
                self._pattern = re.compile("|".join(re.escape(v) for v in sorted(spellings, key=len, reverse=True)))
            return self._pattern

    def hide(self, text: str) -> str:
        pattern = self.pattern()
        return pattern.sub(MASK, text) if pattern is not None else text


#: The process's known secrets.
SECRETS = SecretSet()


def redact_url(url: str) -> str:
    """``url`` without its userinfo and with every query value masked; a string that does not
    parse as a URL is returned with known secrets hidden."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = MASK + "@" + netloc.rpartition("@")[2]
        query = parts.query
        if query:
            query = "&".join(f"{name}={MASK}" if sep else name for name, sep, _ in (p.partition("=") for p in query.split("&")))
        fragment = MASK if parts.fragment else ""
        return SECRETS.hide(urlunsplit((parts.scheme, netloc, parts.path, query, fragment)))
    except ValueError:
        return SECRETS.hide(url)


#: Paths whose last segment is a secret: one-time sign-in links (``/v1/auth/link/<token>``).
_SECRET_PATH = re.compile(r"^(/v1/auth/link/)[^/?]+")


def redact_path(path_qs: str, names: Iterable[str] | None = None) -> str:
    """A request target (``/ws?token=…``) with the values of secret parameters masked (all of
    them when ``names`` is None and the parameter is in ``SECRET_QUERY_PARAMETERS``), and the
    token of a sign-in link path masked."""
    path, sep, query = path_qs.partition("?")
    path = _SECRET_PATH.sub(lambda m: m.group(1) + MASK, path)
    if not sep:
        return path
    secret_names = SECRET_QUERY_PARAMETERS if names is None else frozenset(names)
    shown = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        shown.append(f"{quote(name, safe='.')}={MASK if name.lower() in secret_names else quote(value, safe='')}")
    return SECRETS.hide(path + "?" + "&".join(shown))


def scrub(text: str) -> str:
    """``text`` with every URL in it redacted and every known secret hidden."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    return SECRETS.hide(text)


def register_settings_secrets(settings: BaseModel) -> None:
    """Remember every ``SecretStr`` field of ``settings`` (for the life of the process)."""
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            SECRETS.add(value.get_secret_value(), fixed=True)


def register_application_secrets(doc: Mapping[str, Any] | None) -> None:
    """Remember an application document's ``secret`` and every credential in ``channels``."""
    if not doc:
        return
    found: list[str] = []
    secret = doc.get("secret")
    if isinstance(secret, str):
        found.append(secret)
    callback = doc.get("callback_url")
    if isinstance(callback, str):
        found.extend(_url_secrets(callback))
    _credentials(doc.get("channels"), found, depth=0)
    SECRETS.add(*found)


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password or "", *(value for _, value in parse_qsl(parts.query))]
    return [v for v in found if v]


def _credentials(value: Any, found: list[str], *, depth: int, credential: bool = False) -> None:
    if depth > 4:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            named = isinstance(key, str) and any(word in key.lower() for word in _CREDENTIAL_WORDS)
            _credentials(item, found, depth=depth + 1, credential=credential or named)
    elif isinstance(value, list):
        for item in value:
            _credentials(item, found, depth=depth + 1, credential=credential)
    elif credential and isinstance(value, str):
        found.append(value)


class ScrubbingFormatter(logging.Formatter):
    """A formatter whose output (message, arguments, traceback) goes through ``scrub``."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return scrub(self._inner.format(record))


def install_log_scrubbing(logger: logging.Logger | None = None) -> None:
    """Wrap the formatter of every handler of ``logger`` (the root logger by default) in a
    ``ScrubbingFormatter``; handlers already wrapped are left as they are."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not isinstance(handler.formatter, ScrubbingFormatter):
            handler.setFormatter(ScrubbingFormatter(handler.formatter))
