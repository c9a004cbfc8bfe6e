"""What a spec raises when a tool's parameters cannot be served as given."""

from __future__ import annotations

from gateway.errors import FieldError

__all__ = ["FieldError", "ToolInputError"]


class ToolInputError(Exception):
    """A tool's request cannot be served as given; the whole message says what to fix. A single
    invalid parameter is a FieldError instead, formatted at the tool boundary (tools.reporting)."""
