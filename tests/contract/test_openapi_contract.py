"""The OpenAPI document is the contract: schemathesis drives every operation of
``/v1/openapi.json`` against a running ``parley worker`` (with the admin key, so the admin API and
the table queries are exercised too) and checks each answer: no server error, a documented status
code, the documented content type and headers, and a body that matches the documented schema.

Both valid (positive) and invalid (negative) inputs are generated, at most ``EXAMPLES`` of each
per operation, so the run stays within a minute or two; raise it for a deeper search
(``PARLEY_CONTRACT_EXAMPLES=200``). Every failing operation is reported, not only the first.

Schemathesis's own pytest integration (``schemathesis.pytest.from_fixture``) is not used: its
subtests fail on this pytest (``'Function' object has no attribute '_nodeid'``); the operations'
strategies are driven with Hypothesis directly instead.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from parley.web.openapi import openapi_document
from tests.conftest import ADMIN_KEY
from tests.support.worker import ParleyProcess

EXAMPLES = int(os.environ.get("PARLEY_CONTRACT_EXAMPLES", "50"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _run(operation: Any, mode: GenerationMode, base_url: str, counter: list[int]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        counter[0] += 1
        # the admin key by default; a generated Authorization header (auth cases) wins
        headers = {} if case.headers and "Authorization" in case.headers else {
            "Authorization": f"Bearer {ADMIN_KEY}"}
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    check()


def test_every_operation_keeps_to_the_document(worker: ParleyProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{worker.http}/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20, "the document lost operations"
    failures: list[str] = []
    counter = [0]
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run(operation, mode, worker.http, counter)
            except Unsatisfiable:
                # nothing to make invalid (no parameters, no body): only positive cases exist
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    print(  # figures for the log (-s): operations, cases, time
        f"schemathesis {schemathesis.__version__}: {len(operations)} operations, "
        f"{counter[0]} cases, {time.monotonic() - started:.1f} s, {len(failures)} failing"
    )
    assert not failures, "\n\n".join(failures)


def test_header_examples_are_legal_header_values() -> None:
    """A client copying an example must be able to send it: visible ASCII and spaces only (an
    ellipsis, for one, is not a legal header value)."""
    found = 0
    for item in openapi_document()["paths"].values():
        for operation in [item, *(v for v in item.values() if isinstance(v, dict))]:
            for param in operation.get("parameters", []):
                if param.get("in") != "header":
                    continue
                for example in [*param.get("schema", {}).get("examples", []), *param.get("examples", {}).values()]:
                    found += 1
                    value = example["value"] if isinstance(example, dict) else example
                    assert re.fullmatch(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?", value), (param["name"], value)
    assert found, "no header examples left to check"
