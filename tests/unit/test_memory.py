"""Memory: the prompt fits the chatbot's token budget; older messages fold into a summary."""

from __future__ import annotations

import json

from parley.config.models import ChatbotConfig
from parley.llm import Completion
from parley.streams.conversation import ConversationState
from parley.streams.memory import estimate_tokens, should_fold, split_for_budget
from parley.streams.turns import TurnHandler
from parley.tools import default_registry
from tests.unit.test_turns import ScriptedModel, user


def msg(role: str, text: str, **extra) -> dict:
    return {"role": role, "content": text, **extra}


def test_estimate_counts_characters_and_tool_call_arguments():
    assert estimate_tokens(msg("user", "x" * 40)) == 10 + 4
    call = {"function": {"name": "calculate", "arguments": json.dumps({"expression": "1+1"})}}
    assert estimate_tokens({"role": "assistant", "content": None, "tool_calls": [call]}) > 4


def test_recent_part_fits_the_budget_and_starts_at_a_user_message():
    history = []
    for i in range(10):
        history += [msg("user", f"question {i} " + "x" * 36), msg("assistant", f"answer {i} " + "y" * 36)]
    older, recent = split_for_budget(history, token_budget=60, max_messages=100)
    assert recent[0]["role"] == "user"
    assert sum(estimate_tokens(m) for m in recent) <= 60
    assert older + recent == history
    assert recent[-1]["content"].startswith("answer 9")


def test_a_tool_call_and_its_result_stay_together_even_over_budget():
    history = [
        msg("user", "old " * 50), msg("assistant", "old answer " * 20),
        msg("user", "what is 6*7?"),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "calculate", "arguments": "{\"expression\": \"6*7\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "6*7 = 42 " * 40},
    ]
    older, recent = split_for_budget(history, token_budget=10, max_messages=100)
    assert [m["role"] for m in recent] == ["user", "assistant", "tool"]
    assert len(older) == 2


def test_fold_waits_until_enough_fell_out():
    assert not should_fold([], 1000)
    assert not should_fold([msg("user", "short")], 1000)
    assert should_fold([msg("user", "x" * 1200)], 1000)


class SummarisingModel(ScriptedModel):
    """Answers summary requests with a recognisable summary, everything else with long text."""

    async def complete(self, messages, tools, on_delta, **options):
        self.calls.append((messages, tools))
        if messages[0]["content"].startswith("You maintain the memory"):
            return Completion(text=f"SUMMARY #{len(self.calls)}")
        await on_delta("answer")
        return Completion(text="answer " + "z" * 80)


async def test_long_conversation_is_summarised_and_the_prompt_stays_within_budget():
    config = ChatbotConfig(system_prompt="Be brief.", history_token_budget=120)
    model = SummarisingModel()

    async def publish(*args) -> None:
        return None

    handler = TurnHandler(model, default_registry(), publish)
    state = ConversationState()
    for i in range(8):
        await handler.handle(user(f"e{i}", f"question {i} " + "q" * 80), state, config)

    assert state.summary.startswith("SUMMARY")
    summary_calls = [m for m, tools in model.calls if m[0]["content"].startswith("You maintain the memory")]
    assert len(summary_calls) >= 1
    assert "question 0" in summary_calls[0][1]["content"]
    if len(summary_calls) > 1:
        assert "Previous summary: SUMMARY" in summary_calls[1][1]["content"]
    last_prompt, _ = model.calls[-1]
    assert last_prompt[0] == {"role": "system", "content": "Be brief."}
    assert last_prompt[1]["content"].startswith("Summary of the earlier conversation: SUMMARY")
    assert last_prompt[-1]["content"].startswith("question 7")
    assert sum(len(str(m.get("content"))) for m in last_prompt[2:]) / 4 <= 120 + 4 * len(last_prompt)
    assert len(state.history) < 16, "folded messages leave the table value"


async def test_a_failing_summary_keeps_history_and_still_answers():
    from parley.llm import LLMError

    config = ChatbotConfig(history_token_budget=40)
    model = ScriptedModel("a1 " + "z" * 200, LLMError("down"), "a2", LLMError("down"), "a3")

    async def publish(*args) -> None:
        return None

    handler = TurnHandler(model, default_registry(), publish)
    state = ConversationState()
    for i in range(3):
        out = await handler.handle(user(f"e{i}", f"question {i} " + "q" * 100), state, config)
        assert out.replies and not out.replies[0].is_error
    assert state.summary == ""
    assert [m["content"][:10] for m in state.history if m["role"] == "user"] == ["question 0", "question 1", "question 2"]
