"""Integration tests start workers of their own, in new consumer groups. On the session's broker
a new group would first re-answer every event earlier tests left on `incoming` (the groups read
from the earliest offset), so each module here gets a fresh broker; the document server is
shared."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parley.embedded import EmbeddedServer, start_broker


@pytest.fixture(scope="module")
def services(
    session_services: dict[str, EmbeddedServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, EmbeddedServer]]:
    broker = start_broker(tmp_path_factory.mktemp("module-broker"))
    try:
        yield {**session_services, "broker": broker}
    finally:
        broker.stop()
