"""The key never survives into a message, whole or as a partial echo."""

from gateway.errors import REDACTED, Redactor

KEY = "sk-live-9f8e7d6c5b4a3210ZYXW"


def test_whole_key_and_bearer_header_are_redacted() -> None:
    redact = Redactor([KEY])
    text = redact(f"Incorrect API key provided: {KEY}. Header was 'Authorization: Bearer {KEY}'")
    assert KEY not in text
    assert REDACTED in text


def test_partial_echoes_of_the_key_are_redacted() -> None:
    redact = Redactor([KEY])
    assert KEY[:12] not in redact(f"key {KEY[:12]}**** is invalid")
    assert KEY[-10:] not in redact(f"key ****{KEY[-10:]} is invalid")


def test_ordinary_text_is_left_alone() -> None:
    redact = Redactor([KEY])
    message = "model 'gpt-4.1' does not exist; see https://api.holysheep.ai/v1/models"
    assert redact(message) == message
