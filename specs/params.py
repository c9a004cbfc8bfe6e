"""The parsing primitives every spec reads a parameter with: text, number, true/false, one of a list.
Each refuses a bad value with a FieldError naming the parameter as the workflow editor shows it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.config import parse_number
from gateway.errors import FieldError
from untrusted import InputError, check_text, quote

Params = Mapping[str, Any]

MAX_PROMPT_CHARS = 2_000_000


def text_param(params: Params, name: str, *, required: bool = False, default: str = "", max_chars: int = MAX_PROMPT_CHARS) -> str:
    value = params.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    try:
        check_text(value, max_chars=max_chars)
    except InputError as exc:
        raise FieldError(name, str(exc)) from None
    if required and not value.strip():
        raise FieldError(name, "is empty: give it some text")
    return value if value.strip() else default


def number_param(params: Params, name: str, **limits: Any) -> Any:
    return parse_number(params.get(name), field=name, **limits)


def bool_param(params: Params, name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)  # Dify types a parameter default as number-or-string: `false` arrives as 0.0
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if text in ("true", "1", "1.0", "yes", "on"):
        return True
    if text in ("false", "0", "0.0", "no", "off"):
        return False
    raise FieldError(name, f"must be true or false, got {quote(value)}")


def choice_param(params: Params, name: str, choices: Iterable[str], default: str) -> str:
    raw = params.get(name)
    value = (raw.strip() if isinstance(raw, str) else "" if raw is None else str(raw)) or default
    allowed = list(choices)
    if value not in allowed:
        raise FieldError(name, f"must be one of {', '.join(allowed)}; got {quote(raw)}")
    return value
