"""Values repeated in messages: a short prefix, every invisible or control character made visible."""

from __future__ import annotations

import unicodedata

DEFAULT_LIMIT = 60
# Control, format (zero-width, bidi), surrogate, private-use, unassigned, line and paragraph separators.
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def quote(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """`value` in single quotes, at most `limit` characters of it, e.g. 'abc\\x07…' (2097152 characters).

    Only the prefix is looked at, so the cost does not grow with the value.
    """
    text = value if isinstance(value, str) else _short_str(value, limit)
    shown = "".join(_visible(ch) for ch in text[:limit])
    if len(text) > limit:
        return f"'{shown}…' ({len(text)} characters)"
    return f"'{shown}'"


def _visible(ch: str) -> str:
    if ch == "'":
        return "\\'"
    if ch == "\\":
        return "\\\\"
    if unicodedata.category(ch) in _HIDDEN:
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return ch


def _short_str(value: object, limit: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        # str() of a huge integer is slow, and refused past 4300 digits: say how large it is instead.
        return f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    if isinstance(value, int | float | bool) or value is None:
        return str(value)
    return f"<{type(value).__name__}>"  # a container's repr could be anything in size
