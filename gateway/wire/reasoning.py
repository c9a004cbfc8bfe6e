"""Reasoning kept apart from the answer.

Models return their reasoning in one of three ways: a `reasoning_content` field (DeepSeek, most
OpenAI-compatible gateways), a `reasoning` field (OpenRouter and others), or a `<think>...</think>`
block at the start of `content` (DeepSeek R1, Qwen and other open models served raw). The answer is
`content` without the block; the reasoning is the field or the block's inside.

In a stream a tag can be split across chunks (`<thi` + `nk>`): `ThinkSplitter` holds back exactly the
characters that could still be the start of a tag, so no partial tag reaches the answer stream.
"""

from __future__ import annotations

from typing import Any

OPEN, CLOSE = "<think>", "</think>"
REASONING_FIELDS = ("reasoning_content", "reasoning")


def reasoning_field(message: Any) -> str:
    """The reasoning a message or delta carries in a field of its own, "" when none."""
    if not isinstance(message, dict):
        return ""
    for name in REASONING_FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _partial_suffix(text: str, tag: str) -> int:
    """How many characters at the end of `text` could be the beginning of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkSplitter:
    """Splits content into (answer, reasoning) pieces as it arrives. Only a block that opens the content
    (after optional whitespace) is reasoning: a `<think>` later in an answer is the answer's own text."""

    __slots__ = ("_buffer", "_mode")

    def __init__(self) -> None:
        self._mode = "start"  # start: nothing decided yet; think: inside the block; answer: after it
        self._buffer = ""

    def feed(self, text: str) -> tuple[str, str]:
        if self._mode == "answer" and not self._buffer:
            return text, ""  # the common case, once decided: no work
        self._buffer += text
        answer, reasoning = "", ""
        while True:
            if self._mode == "start":
                head = self._buffer.lstrip()
                if not head:
                    return answer, reasoning  # only whitespace so far: undecided
                if head.startswith(OPEN):
                    self._mode, self._buffer = "think", head[len(OPEN) :]
                    continue
                if OPEN.startswith(head):
                    return answer, reasoning  # could still become "<think>"
                self._mode = "answer"
                answer, self._buffer = answer + self._buffer, ""
                return answer, reasoning
            if self._mode == "think":
                end = self._buffer.find(CLOSE)
                if end < 0:
                    keep = _partial_suffix(self._buffer, CLOSE)
                    cut = len(self._buffer) - keep
                    reasoning += self._buffer[:cut]
                    self._buffer = self._buffer[cut:]
                    return answer, reasoning
                reasoning += self._buffer[:end]
                self._buffer = self._buffer[end + len(CLOSE) :]
                self._mode = "after"
                continue
            if self._mode == "after":  # the blank lines between the block and the answer are dropped
                stripped = self._buffer.lstrip()
                if not stripped:
                    self._buffer = ""
                    return answer, reasoning
                self._mode, self._buffer = "answer", ""
                return answer + stripped, reasoning
            answer, self._buffer = answer + self._buffer, ""
            return answer, reasoning

    def close(self) -> tuple[str, str]:
        """What is still held back when the content ends: an unfinished block is reasoning (the model
        stopped while thinking); undecided text is answer."""
        rest, self._buffer = self._buffer, ""
        if self._mode == "think":
            return "", rest
        if self._mode == "after":
            return rest.lstrip(), ""
        self._mode = "answer"
        return rest, ""


def split_content(content: str) -> tuple[str, str]:
    """(answer, reasoning) of a whole content string."""
    splitter = ThinkSplitter()
    answer, reasoning = splitter.feed(content)
    more_answer, more_reasoning = splitter.close()
    return answer + more_answer, reasoning + more_reasoning
