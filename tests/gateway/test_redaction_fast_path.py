"""The redaction fast path (a text is cut into chunks and looked at closely only around chunks that are
part of a secret) finds exactly what a look at every position finds: it never skips an echo."""

from __future__ import annotations

import base64
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import REDACTED, Redactor, SecretIndex, secret_forms, widened_to_tokens

KEY = "sk-live-9f8e7d6c5b4a3210ZYXW"


def full_scan(index: SecretIndex, text: str) -> list[tuple[int, int]]:
    """The echo spans from a look-up at every position of the text (what the fast path must equal)."""
    size = index.MIN_ECHO
    grams = index._grams  # every MIN_ECHO-character slice of every form (of an over-long one, of its ends)
    spans: list[tuple[int, int]] = []
    for i in range(len(text) - size + 1):
        if text[i : i + size] in grams:
            if spans and i <= spans[-1][1]:
                spans[-1] = (spans[-1][0], i + size)
            else:
                spans.append((i, i + size))
    return widened_to_tokens(text, spans)  # the widening is shared: the fast path changes only where echoes are looked for


def index_of(*secrets: str) -> SecretIndex:
    index = SecretIndex()
    for secret in secrets:
        index.add(secret)
    return index


def test_an_echo_at_every_offset_and_of_every_length_is_found() -> None:
    index = index_of(KEY)
    for length in range(SecretIndex.MIN_ECHO, len(KEY) + 1):
        for start in range(len(KEY) - length + 1):
            echo = KEY[start : start + length]
            for pad in range(9):  # every alignment of the echo against the chunks
                text = "x " * pad + f"key {echo}**** refused"
                assert index._echo_spans(text) == full_scan(index, text)
                assert echo not in Redactor([KEY])(text), (pad, echo)


def test_an_echo_at_the_very_start_and_end_of_the_text_is_found() -> None:
    redact = Redactor([KEY])
    for length in range(8, 12):
        assert redact(KEY[:length]) == REDACTED
        assert redact(KEY[-length:]) == REDACTED
        assert redact("* " + KEY[3 : 3 + length]) == "* " + REDACTED


def test_encoded_forms_are_found_whatever_precedes_them() -> None:
    redact = Redactor([KEY])
    for user in ("", "u", "us", "user", "a-longer-user"):
        encoded = base64.b64encode(f"{user}:{KEY}".encode()).decode()
        for pad in range(5):
            out = redact("." * pad + f"Basic {encoded} sent")
            assert encoded not in out and REDACTED in out


def test_ordinary_text_that_shares_short_pieces_with_the_key_is_left_alone() -> None:
    redact = Redactor([KEY])
    text = "sk-l live 9f8e 7d6c 5b4a 3210 ZYXW: pieces of four are not an echo"
    assert redact(text) == text


def test_removing_a_secret_keeps_the_others_found() -> None:
    other = "pk-test-ABCDEFGH12345678"
    index = index_of(KEY, other)
    index.remove(other)
    assert index._echo_spans(f"a {other} b") == []
    assert index._echo_spans(f"a {KEY[4:14]} b") == full_scan(index, f"a {KEY[4:14]} b") != []
    index.add(other)
    assert index._echo_spans(f"a {other[2:12]} b") != []


def test_many_echoes_in_a_long_text_match_the_full_scan() -> None:
    rng = random.Random(7)
    secrets = [KEY, "A" * 40, "x7Qz" * 20, "s3cr3t/KEY+with=odd&chars!", "ключ-секрет-12345"]
    index = index_of(*secrets)
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(1, 12)):
            secret = rng.choice(secrets)
            form = rng.choice(secret_forms(secret))
            start = rng.randrange(len(form))
            parts.append(form[start : start + rng.randint(1, 20)])
            parts.append(rng.choice([" ", "  ", "**", "Z", "abc def ", "\n", "é"]))
        text = "".join(parts)
        assert index._echo_spans(text) == full_scan(index, text), text


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(alphabet="ab12-_/+=%: ", min_size=1, max_size=30),
    pieces=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40), st.text(alphabet="ab12-_ .*", max_size=6)), max_size=6),
)
def test_the_fast_path_equals_the_full_scan(secret: str, pieces: list[tuple[int, int, str]]) -> None:
    index = index_of(secret)
    forms = secret_forms(secret)
    text = "".join(forms[a % len(forms)][b:] + filler for a, b, filler in pieces)
    assert index._echo_spans(text) == full_scan(index, text)


def test_a_bearer_token_is_redacted_in_any_letter_case() -> None:
    redact = Redactor([KEY])
    assert redact("BEARER abc; bEaReR def, bearer\tghi") == f"BEARER {REDACTED}; bEaReR {REDACTED}, bearer\t{REDACTED}"
    assert redact("a bear and a bearing") == "a bear and a bearing"
