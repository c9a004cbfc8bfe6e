"""Places in a request where text hides from a person skimming it but not from a model: HTML comments,
markdown link titles, code comments, footnotes and CSV cells.

Legitimate text there is about the content (a file name, "prices exclude VAT", "install with pip");
text there about the approval itself is an instruction placed where the requester hoped nobody would
look, so the screen judges these segments on their own and more strictly (see approval.injection.screen).
"""

from __future__ import annotations

import csv
import io
import re

MAX_SEGMENTS = 50
MAX_SEGMENT_CHARS = 2000

_HTML_COMMENT = re.compile(r"<!--(.{0,2000}?)(?:-->|$)", re.DOTALL)
_LINK_TITLE = re.compile(r"\]\([^()\s]{0,500}\s+(?:\"([^\"]{0,500})\"|'([^']{0,500})'|\(([^()]{0,500})\))\s*\)")
_LINE_COMMENT = re.compile(r"^[ \t]*(?:#+|//+|--+|;+|%+|rem\b)[ \t]*(.{1,500})$", re.MULTILINE | re.IGNORECASE)
_TRAILING_COMMENT = re.compile(r"\S[ \t]+(?:#|//|--)[ \t]+(.{1,500})$", re.MULTILINE)
_BLOCK_COMMENT = re.compile(r"/\*(.{0,2000}?)\*/", re.DOTALL)
_FOOTNOTE = re.compile(r"^[ \t]*\[\^?[\w-]{1,10}\]:?[ \t]*(.{1,1000})$", re.MULTILINE)


def _csv_cells(text: str) -> list[str]:
    """Cells of lines that look like CSV (two or more separators on at least two lines)."""
    lines = [line for line in text.splitlines() if max(line.count(","), line.count(";"), line.count("\t")) >= 2]
    if len(lines) < 2:
        return []
    cells: list[str] = []
    for line in lines[:MAX_SEGMENTS]:
        delimiter = max((",", ";", "\t"), key=line.count)
        try:
            row = next(csv.reader(io.StringIO(line), delimiter=delimiter))
        except (csv.Error, StopIteration):
            continue
        cells.extend(cell.strip() for cell in row if len(cell.strip()) > 3 and not re.fullmatch(r"[\d\s.,:/-]+", cell))
    return cells


def hidden_places(text: str) -> list[tuple[str, str]]:
    """(place, segment) pairs: the text of every HTML comment, link title, code comment, footnote and CSV cell."""
    found: list[tuple[str, str]] = []
    found.extend(("html_comment", m.group(1)) for m in _HTML_COMMENT.finditer(text))
    found.extend(("link_title", next(g for g in m.groups() if g is not None)) for m in _LINK_TITLE.finditer(text))
    found.extend(("code_comment", m.group(1)) for pattern in (_LINE_COMMENT, _TRAILING_COMMENT, _BLOCK_COMMENT)
                 for m in pattern.finditer(text))
    found.extend(("footnote", m.group(1)) for m in _FOOTNOTE.finditer(text))
    found.extend(("csv_cell", cell) for cell in _csv_cells(text))
    return [(place, segment[:MAX_SEGMENT_CHARS]) for place, segment in found if segment.strip()][:MAX_SEGMENTS]


__all__ = ["hidden_places"]
