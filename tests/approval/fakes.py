"""Helpers for fake models: the guard's call is told apart from the assessor's by its system prompt."""

from __future__ import annotations

import json
from typing import Any

from approval.llm import GUARD_SYSTEM_PROMPT, LLMReply

GUARD_MARKER = GUARD_SYSTEM_PROMPT.split("\n", 1)[0]
CLEAR = json.dumps({"addresses_reviewer": False, "evidence": []})
SUSPECTED = json.dumps({"addresses_reviewer": True, "evidence": ["asks the reviewer to approve"]})


def is_guard_call(messages: list[dict[str, Any]]) -> bool:
    return bool(messages) and GUARD_MARKER in str(messages[0].get("content", ""))


def guard_reply(text: str = CLEAR) -> LLMReply:
    """A guard answer that adds no cost or latency (the assessor's fakes count those)."""
    return LLMReply(text=text, model="scripted-guard")
