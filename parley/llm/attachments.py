"""The model port with attached images made reachable: ``FileLinkingModel`` wraps the
``ModelRouter`` and turns each ``parley-file:<file_id>`` reference of a prompt
(``parley.attachments.StoredFile.ref``) into a link the provider can fetch, right before the call.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parley.attachments import UNAVAILABLE_IMAGE, referenced_file_id
from parley.filetypes import TYPES_BY_EXTENSION
from parley.ports import FileStore, FileStoreError
from parley.storage.files import is_valid_key

__all__ = ["UNAVAILABLE_IMAGE", "FileLinkingModel"]

logger = logging.getLogger(__name__)


class FileLinkingModel:
    """The model port, with attached images made reachable: every ``parley-file:<file_id>``
    image URL in a prompt becomes a fresh presigned link (or, with ``inline``, a ``data:`` URL
    of the bytes, for stores the model provider cannot reach) just before the call. An image
    whose link cannot be made becomes a text part saying so (``UNAVAILABLE_IMAGE``). Everything
    else is the wrapped model's (``parley.llm.ModelRouter``)."""

    def __init__(self, model: Any, store: FileStore, *, expires_s: int, inline: bool = False) -> None:
        self.inner = model
        self._store = store
        self._expires_s = expires_s
        self._inline = inline

    @property
    def name(self) -> str:
        return str(self.inner.name)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet: do not recurse
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def close(self) -> None:
        await self.inner.close()

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], on_delta: Any, **options: Any
    ) -> Any:
        return await self.inner.complete(await self.link(messages), tools, on_delta, **options)

    async def link(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` with file references replaced (a new list; the input is not changed)."""
        refs = {file_id for message in messages for part in _parts(message) if (file_id := _ref(part)) is not None}
        if not refs:
            return messages
        links = {file_id: await self._link(file_id) for file_id in sorted(refs)}
        linked = []
        for message in messages:
            if not any(_ref(part) is not None for part in _parts(message)):
                linked.append(message)
                continue
            content = []
            for part in message["content"]:
                file_id = _ref(part)
                if file_id is None:
                    content.append(part)
                    continue
                url = links.get(file_id)
                if url is None:
                    content.append({"type": "text", "text": UNAVAILABLE_IMAGE})
                else:
                    content.append({**part, "image_url": {**part["image_url"], "url": url}})
            linked.append({**message, "content": content})
        return linked

    async def _link(self, file_id: str) -> str | None:
        try:
            if not is_valid_key(file_id):
                raise ValueError("not a file id")
            if not self._inline:
                return await self._store.presigned_url(file_id, self._expires_s)
            data = await self._store.get(file_id)
            mime = TYPES_BY_EXTENSION.get(Path(file_id).suffix, "application/octet-stream")
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        except (FileStoreError, ValueError) as exc:
            logger.warning("no link for attached image %s: %s", file_id, exc)
            return None


def _parts(message: Mapping[str, Any]) -> list[Any]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def _ref(part: Any) -> str | None:
    """The file an ``image_url`` part refers to by ``parley-file:``; None for any other part."""
    if not isinstance(part, dict) or part.get("type") != "image_url":
        return None
    return referenced_file_id((part.get("image_url") or {}).get("url"))
