"""Invisible and format characters: what a person reading the request cannot see.

:func:`reveal` turns untrusted text into the form that both the injection screen and the models read,
so neither sees something the other does not:

* Unicode TAG characters (U+E0000-U+E007F) spell ASCII invisibly; each run is replaced by what it
  spells, shown in brackets (``[hidden text: ...]``), so the screen matches it and the model sees it
  as visible data rather than obeying it unseen.
* Runs of variation selectors after one character can carry bytes (VS1-VS16 and VS17-VS256 as 0-255,
  the "emoji smuggling" trick); a run that decodes to readable UTF-8 is shown the same way, any other
  variation selector is removed.
* Bidi controls, zero-width characters and every other format character (category Cf) are removed;
  blank look-alikes (braille blank, Hangul fillers, ...) become an ordinary space.

The counts of what was removed or shown go to the audit (:attr:`Revealed.removed`).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field

TAG_START, TAG_END = 0xE0000, 0xE007F
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ZERO_WIDTH = frozenset("\u00ad\u034f\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff")
# Characters that render as blank but are not whitespace, so text split on spaces keeps them inside words.
BLANK_LOOKALIKES = frozenset("\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0\U0001d159\U0001d173\U0001d174\U0001d175"
                             "\U0001d176\U0001d177\U0001d178\U0001d179\U0001d17a")
MAX_SHOWN_CHARS = 2000  # one hidden payload is shown up to this length (the field's own limit bounds the rest)


def _variation_byte(char: str) -> int | None:
    code = ord(char)
    if 0xFE00 <= code <= 0xFE0F:
        return code - 0xFE00
    if 0xE0100 <= code <= 0xE01EF:
        return code - 0xE0100 + 16
    return None


def kind_of(char: str) -> str | None:
    """Which hidden kind ``char`` is ("tag", "bidi", "zero_width", ...), or None for a visible character."""
    code = ord(char)
    if TAG_START <= code <= TAG_END:
        return "tag"
    if _variation_byte(char) is not None:
        return "variation_selector"
    if char in _BIDI:
        return "bidi"
    if char in _ZERO_WIDTH:
        return "zero_width"
    if char in BLANK_LOOKALIKES:
        return "blank_lookalike"
    if unicodedata.category(char) == "Cf":
        return "format"
    return None


@dataclass(frozen=True)
class Revealed:
    """``text``: the visible text with hidden payloads shown; ``removed``: kind -> number of characters;
    ``hidden``: the payloads decoded from TAG characters or variation selectors."""

    text: str
    removed: dict[str, int] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()


def _tag_payload(run: str) -> str:
    return "".join(chr(ord(char) - TAG_START) for char in run if 0xE0020 <= ord(char) <= 0xE007E)


def _variation_payload(run: str) -> str:
    """The text a run of variation selectors carries, or "" when it carries none (an emoji's VS16)."""
    if len(run) < 2:
        return ""
    blob = bytes(_variation_byte(char) or 0 for char in run)
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return text if text.strip() and all(char.isprintable() or char.isspace() for char in text) else ""


def _shown(payload: str) -> str:
    payload = payload.replace("[", "(").replace("]", ")")[:MAX_SHOWN_CHARS]
    return f" [hidden text: {payload}] "


_RLO, _PDF = "\u202e", "\u202c"


def _unoverride(text: str) -> str:
    """Text after RIGHT-TO-LEFT OVERRIDE is displayed backwards up to its POP DIRECTIONAL FORMATTING (or the
    line's end): reverse it here, so the screen and the model read what a person sees ("evorppa" shows
    as "approve"). The controls themselves stay for :func:`reveal` to count and remove."""
    out: list[str] = []
    index = 0
    while (start := text.find(_RLO, index)) >= 0:
        end = min((pos for pos in (text.find(_PDF, start), text.find("\n", start)) if pos >= 0), default=len(text))
        out.append(text[index:start + 1] + text[start + 1:end][::-1])
        index = end
    out.append(text[index:])
    return "".join(out)


def reveal(text: str) -> Revealed:
    """The text with every hidden character removed, replaced by a space, or shown (see the module doc)."""
    if not text or all(kind_of(char) is None for char in text):
        return Revealed(text or "")
    text = _unoverride(text)
    out: list[str] = []
    removed: Counter[str] = Counter()
    hidden: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        kind = kind_of(char)
        if kind is None:
            out.append(char)
            index += 1
            continue
        end = index + 1
        while end < len(text) and kind_of(text[end]) == kind:
            end += 1
        run = text[index:end]
        removed[kind] += len(run)
        payload = _tag_payload(run) if kind == "tag" else _variation_payload(run) if kind == "variation_selector" else ""
        if payload.strip():
            hidden.append(payload)
            out.append(_shown(payload))
        elif kind == "blank_lookalike":
            out.append(" ")
        index = end
    return Revealed("".join(out), dict(removed), tuple(hidden))


def reveal_text(text: str) -> str:
    """:func:`reveal`'s text alone (what goes into a model prompt)."""
    return reveal(text).text


__all__ = ["BLANK_LOOKALIKES", "Revealed", "kind_of", "reveal", "reveal_text"]
