"""Built-in tools: the current time in an IANA zone, and a safe arithmetic evaluator."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parley.tools.registry import Tool, ToolError

__all__ = ["BUILTIN_TOOLS", "current_time", "calculate", "evaluate"]

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
MAX_ABS_RESULT = 10**100


async def current_time(timezone: str) -> str:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a directory
        raise ToolError(f"unknown IANA time zone {timezone!r} (try e.g. 'Europe/Paris')") from exc
    now = datetime.now(zone)
    return now.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%z)") + f" in {timezone}"


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def evaluate(expression: str) -> float | int:
    """Evaluate + - * / // % ** and parentheses on numbers; anything else is refused."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from exc
    return _eval(tree.body)


def _eval(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponent larger than {MAX_EXPONENT}")
        try:
            value = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise ToolError("division by zero") from exc
        except OverflowError as exc:  # float ** float, e.g. 1e300 ** 2
            raise ToolError("result too large") from exc
        if isinstance(value, complex):
            raise ToolError("result is not a real number")
        if abs(value) > MAX_ABS_RESULT or (isinstance(value, float) and not math.isfinite(value)):
            raise ToolError("result too large")
        return value
    raise ToolError(f"unsupported element in expression: {type(node).__name__}")


async def calculate(expression: str) -> str:
    value = evaluate(expression)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{expression} = {value}"


BUILTIN_TOOLS = (
    Tool(
        name="current_time",
        description="Current date and time in an IANA time zone such as 'Europe/Paris'.",
        parameters={
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "IANA zone name"}},
            "required": ["timezone"],
            "additionalProperties": False,
        },
        fn=current_time,
    ),
    Tool(
        name="calculate",
        description="Evaluate an arithmetic expression with + - * / // % ** and parentheses.",
        parameters={
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
            "additionalProperties": False,
        },
        fn=calculate,
    ),
)
