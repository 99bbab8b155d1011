"""Built-in tools and ToolRegistry.run: every failure is an error outcome the model can read."""

from __future__ import annotations

import asyncio
import json

import pytest

from parley.tools import Tool, ToolError, default_registry
from parley.tools.builtin import calculate, current_time


async def test_current_time_in_a_valid_zone() -> None:
    text = await current_time("Asia/Tokyo")
    assert text.endswith("in Asia/Tokyo")
    assert "JST" in text and "UTC+0900" in text


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe", "../etc/passwd", ""])
async def test_current_time_refuses_an_unknown_zone(zone: str) -> None:
    with pytest.raises(ToolError, match="unknown IANA time zone"):
        await current_time(zone)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2+3*4", "14"),
        ("(2+3)*4", "20"),
        ("2^10", "1024"),
        ("-2**2", "-4"),
        ("7/2", "3.5"),
        ("8/2", "4"),
        ("7//2 + 7%2", "4"),
    ],
)
async def test_calculate(expression: str, value: str) -> None:
    assert await calculate(expression) == f"{expression} = {value}"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1/0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("2**100000", "exponent larger than"),
        ("9^9^9", "exponent larger than"),
        ("10**99 * 10**99", "too large"),
        ("1e300**2", "too large"),
        ("(-8)**0.5", "not a real number"),
        ("__import__('os')", "unsupported element"),
        ("().__class__", "unsupported element"),
        ("x + 1", "unsupported element"),
        ("'a' * 3", "unsupported element"),
        ("2 +", "not an arithmetic expression"),
        ("1+" * 150 + "1", "longer than 200"),
    ],
)
async def test_calculate_refuses(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        await calculate(expression)


async def test_registry_runs_a_tool() -> None:
    outcome = await default_registry().run("calculate", '{"expression": "6*7"}', timeout_s=1)
    assert (outcome.content, outcome.is_error) == ("6*7 = 42", False)


async def _boom() -> str:
    raise KeyError("internal detail")


async def _slow() -> str:
    await asyncio.sleep(10)
    return "too late"


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("rm_rf", "{}", "unknown tool 'rm_rf'"),
        ("calculate", "{not json", "not valid JSON"),
        ("calculate", "[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ("calculate", '["1+1"]', "must be a JSON object"),
        ("calculate", '{"expr": "1+1"}', "bad arguments for calculate"),
        ("calculate", '{"expression": "1/0"}', "division by zero"),
        ("current_time", '{"timezone": "Nowhere/Town"}', "unknown IANA time zone"),
        ("boom", "{}", "boom failed: KeyError"),
        ("slow", "{}", "slow timed out after 0.05s"),
    ],
)
async def test_registry_turns_every_failure_into_an_error_outcome(
    name: str, arguments: str, message: str
) -> None:
    registry = default_registry()
    registry.add(Tool("boom", "raises", {"type": "object"}, _boom))
    registry.add(Tool("slow", "sleeps", {"type": "object"}, _slow))
    outcome = await registry.run(name, arguments, timeout_s=0.05)
    assert outcome.is_error
    assert outcome.content.startswith("error: ")
    assert message in outcome.content
    assert "internal detail" not in outcome.content


def test_registry_specs_follow_the_enabled_list() -> None:
    registry = default_registry()
    assert registry.names() == ["calculate", "current_time"]
    specs = registry.specs(["current_time", "no_such_tool"])
    assert [s["function"]["name"] for s in specs] == ["current_time"]
    assert json.loads(json.dumps(specs))[0]["function"]["parameters"]["required"] == ["timezone"]
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(Tool("calculate", "dup", {}, _boom))
