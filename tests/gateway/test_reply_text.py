"""Reply text as it enters: the key redacted however a stream cuts it, little held back, and nothing left
that the SDK's JSON, Redis or Dify's database cannot carry."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from gateway.errors import REDACTED, Redactor, StreamRedactor, carriable

KEY = "sk-echo/Key+0123=456789abcdefXYZ"
FORMS = [
    KEY,
    base64.b64encode(f"Bearer {KEY}".encode()).decode(),
    base64.b64encode(KEY.encode()).decode(),
    urllib.parse.quote(KEY, safe=""),
]


def streamed(text: str, size: int, redact: Redactor) -> list[str]:
    stream = StreamRedactor(redact)
    return [stream.feed(text[i : i + size]) for i in range(0, len(text), size)] + [stream.close()]


@pytest.mark.parametrize("form", FORMS)
def test_a_key_echo_is_redacted_whatever_the_chunks_it_is_cut_into(form: str) -> None:
    redact = Redactor([KEY])
    text = f"Your header was {form}, thanks."
    for size in range(1, len(text) + 1):
        out = "".join(streamed(text, size, redact))
        # Redacted as a whole; cut finely, text before the key's own characters (base64 of "Bearer ") may
        # already have gone out: it says nothing of the key.
        assert out.endswith(f"{REDACTED}, thanks.") and out.startswith("Your header was "), (size, out)
        assert form[len(form) // 4 : -len(form) // 4] not in out and KEY[4:12] not in out, (size, out)


def test_plain_text_streams_through_and_only_a_tail_that_could_begin_an_echo_waits() -> None:
    redact = Redactor([KEY])
    pieces = streamed("Hello there. How are you? ", 6, redact)
    assert pieces[0] == "Hello " and pieces[1] == "there." and "".join(pieces) == "Hello there. How are you? "
    held = StreamRedactor(redact)
    assert held.feed("see sk-ec") == "see "  # could be the start of the key: kept until more arrives
    assert held.feed("ho, fine") + held.close() == "sk-echo, fine"


def test_uncarriable_characters_become_the_replacement_character_and_pairs_join() -> None:
    assert carriable("a\ud800b\x00c\udfff") == "a\ufffdb\ufffdc\ufffd"
    assert carriable("\ud83d\ude00") == "\U0001f600"  # a pair from two JSON escapes is one character
    json.dumps(carriable("x\ud800"), ensure_ascii=False).encode("utf-8")
    stream = StreamRedactor(Redactor([]))
    assert stream.feed("smile \ud83d") == "smile " and stream.feed("\ude00!") == "\U0001f600!"  # split across chunks
    assert stream.feed("lone \udc00") == "lone \ufffd" and stream.feed("\ud800") == "" and stream.close() == "\ufffd"
