"""What every refusal a workflow sees must be, whatever the input that caused it."""

from devtools.plugin_process import ToolOutcome


def assert_refused_naming(outcome: ToolOutcome, *names: str, max_chars: int) -> str:
    """The call failed with the tool's own message: no catch-all, no traceback, short, no control
    character sent raw, and it names one of `names` (the field to fix). Returns the message."""
    assert not outcome.ok, outcome.variables
    message = outcome.error_message
    assert "internal error" not in message and "Traceback" not in message, message[:300]
    assert len(message) < max_chars, message[:300]
    assert all(ord(ch) >= 32 for ch in message), message[:300]  # control characters are shown, not sent
    assert any(name in message for name in names), message
    return message
