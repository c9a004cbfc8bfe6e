"""JSON and YAML from untrusted text, with limits: size, nesting depth, no YAML aliases, valid Unicode."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class InputError(ValueError):
    """The text cannot be used; the message says why (the caller adds which field it was)."""


def check_text(text: str, *, max_chars: int | None = None) -> str:
    """`text` unchanged if it is valid Unicode within `max_chars`; otherwise InputError."""
    if max_chars is not None and len(text) > max_chars:
        raise InputError(f"is too long ({len(text)} characters, at most {max_chars})")
    bad = _SURROGATE.search(text)
    if bad is not None:
        raise InputError(
            f"contains an invalid Unicode character (lone surrogate \\u{ord(bad.group()):04x} at position {bad.start()}): "
            "remove it or send the text as UTF-8"
        )
    return text


def parse_json(text: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `text`; NaN and Infinity are refused, as standard JSON does."""
    _check_size(text, max_bytes)
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InputError(f"is nested too deeply (at most {max_depth} levels)") from None
    except ValueError as exc:
        if "4300" in str(exc):
            raise InputError("contains a number with thousands of digits: no value here needs that many") from None
        raise InputError(f"is not valid JSON ({_first_line(exc)})") from None
    _check_value(value, max_depth)
    return value


def parse_yaml(text: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The YAML value of `text` (JSON is YAML too). Aliases are refused: `*name` could expand a few hundred
    bytes into gigabytes once anything walks or prints the result."""
    _check_size(text, max_bytes)
    try:
        value = yaml.load(text, Loader=_NoAliasLoader)
    except RecursionError:
        raise InputError(f"is nested too deeply (at most {max_depth} levels)") from None
    except _AliasRefused as exc:
        raise InputError(str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        where = f" on line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}" if exc.problem_mark else ""
        raise InputError(f"is not valid YAML or JSON ({(exc.problem or _first_line(exc))[:200]}{where})") from None
    except ValueError:  # Python refuses to convert an integer of more than 4300 digits
        raise InputError("contains a number with thousands of digits: no value here needs that many") from None
    except yaml.YAMLError as exc:
        raise InputError(f"is not valid YAML or JSON ({_first_line(exc)})") from None
    _check_value(value, max_depth)
    return value


class _AliasRefused(yaml.YAMLError):
    pass


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(
                f"uses a YAML alias (*{str(event.anchor)[:40]}) on line {event.start_mark.line + 1}: write the value out instead"
            )
        return super().compose_node(parent, index)


def _check_size(text: str, max_bytes: int) -> None:
    if not isinstance(text, str):
        raise InputError(f"must be text, got {type(text).__name__}")
    if len(text) > max_bytes:  # characters: a cheap bound before anything is parsed
        raise InputError(f"is too large ({len(text)} characters, at most {max_bytes})")
    check_text(text)


def _check_value(value: Any, max_depth: int) -> None:
    """Depth and Unicode of a parsed value, without recursion (the value may be deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise InputError(f"is nested too deeply (more than {max_depth} levels)")
            children = list(item.items()) if isinstance(item, dict) else item
            for child in children:
                if isinstance(child, tuple):  # a dict entry: the key is text too
                    key, child = child
                    if isinstance(key, str):
                        check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, str):
            check_text(item)
        elif isinstance(item, float) and (item != item or item in (float("inf"), float("-inf"))):
            raise InputError("contains a number that is not finite (NaN or infinity)")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
