"""A job's items, from a `prompts` text (as batch_chat takes it) or a file (JSONL, CSV or XLSX), all
checked before the job is accepted. Every problem names the line, row (or item) and what to fix.

XLSX is read with openpyxl in read-only mode (the sheet's XML is streamed, not loaded), after the zip
directory was checked: an archive whose members would unpack to more than MAX_XLSX_UNPACKED_BYTES (a
zip bomb) is refused before anything is decompressed. CPython's zipfile never inflates a member past
the size its directory entry declares, so the check bounds memory; expat (2.4+) refuses entity
expansion bombs inside the XML."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.batch import BatchInputError, BatchItem, check_unique_ids, parse_item
from gateway.batch import parse_prompts as parse_batch_prompts
from untrusted import InputError, check_text, parse_json, quote

MAX_JOB_ITEMS = 200_000
MAX_PROMPT_CHARS = 200_000
MAX_INPUT_BYTES = 200 * 1024 * 1024
MAX_XLSX_UNPACKED_BYTES = 256 * 1024 * 1024  # all members of the archive, uncompressed
MAX_XLSX_MEMBERS = 10_000
MAX_XLSX_COLUMNS = 256  # columns of the header row looked at
MAX_XLSX_ROWS = MAX_JOB_ITEMS + 50_000  # rows looked at, blank ones included
XLSX_NAMES = (".xlsx", ".xlsm")


# A job's items are batch_chat's items, parsed by the same code with a job's limits.
JobInputError = BatchInputError
JobItem = BatchItem


def parse_prompts(raw: object) -> tuple[list[JobItem], bool]:
    """(items, json_format) from a JSON array (strings or objects) or one prompt per line."""
    batch = parse_batch_prompts(
        raw, max_items=MAX_JOB_ITEMS, max_prompt_chars=MAX_PROMPT_CHARS, max_input_chars=MAX_INPUT_BYTES, split_hint="per job"
    )
    return batch.items, batch.json_format


def parse_file(content: bytes, filename: str, *, prompt_column: str = "prompt", id_column: str = "id") -> list[JobItem]:
    """Items from a JSONL, CSV or XLSX file (by extension, else by content)."""
    name = (filename or "").lower()
    shown = quote(filename or "the file", 80)
    if len(content) > MAX_INPUT_BYTES:
        raise JobInputError(f"{shown} is {len(content)} bytes; at most {MAX_INPUT_BYTES} (split it into several jobs)")
    if name.endswith((".xls", ".xlsb")) or content[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise JobInputError(f"{shown} is an old Excel workbook (.xls/.xlsb), which is not read: save it as .xlsx or as CSV UTF-8")
    if name.endswith(XLSX_NAMES) or content[:4] == b"PK\x03\x04":
        items = _xlsx(content, shown, prompt_column, id_column)
        check_unique_ids(items, _numbered)
        return items
    try:
        text = codecs.decode(content, "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JobInputError(f"the file is not UTF-8 text (byte {exc.start}): save it as UTF-8 (CSV UTF-8 in Excel)") from None
    _check("the file", text, MAX_INPUT_BYTES)
    if name.endswith((".jsonl", ".ndjson", ".json")) or (not name.endswith((".csv", ".tsv", ".txt")) and text.lstrip()[:1] in '{["'):
        items = _jsonl(text)
    else:
        items = _csv(text, prompt_column, id_column, delimiter="\t" if name.endswith(".tsv") else None)
    check_unique_ids(items, _numbered)
    return items


_LINE_END = re.compile(r"\r\n|\r|\n")


def _jsonl(text: str) -> list[JobItem]:
    items: list[JobItem] = []
    # Lines end at CR, LF or CRLF only (JSON never has them raw inside a string): str.splitlines would
    # also cut at U+2028, U+2029 and U+0085, which JSON strings may hold as they are.
    for number, line in enumerate(_LINE_END.split(text), 1):
        if not line.strip():
            continue
        try:
            entry = parse_json(line, max_bytes=MAX_PROMPT_CHARS * 4, max_depth=3)
        except InputError as exc:
            raise JobInputError(f"line {number}: {exc}") from None
        items.append(_item(f"line {number}", len(items), entry))
        _count(len(items), "the file")
    if not items:
        raise JobInputError("the file has no items: one JSON object per line, each with a 'prompt'")
    return items


def _csv(text: str, prompt_column: str, id_column: str, delimiter: str | None) -> list[JobItem]:
    sample = text[:8192]
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise JobInputError("the CSV file is empty: it needs a header row with a 'prompt' column") from None
    except csv.Error as exc:
        raise JobInputError(f"the CSV file cannot be read: {exc}") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as exc:
            raise JobInputError(f"line {reader.line_num}: the CSV cannot be read ({exc})") from None

    return _table("the CSV file", "line", header, rows(), prompt_column, id_column)


def _table(kind: str, unit: str, header: list[str], rows: Iterable[tuple[int, list[str]]], prompt_column: str, id_column: str) -> list[JobItem]:
    """Items from a header and rows of text cells (CSV or a sheet): the prompt and id columns by name
    (any case), optional system_prompt, model and max_tokens columns; blank rows are skipped."""
    columns: dict[str, int] = {}
    for i, h in enumerate(header):
        columns.setdefault(h.lower(), i)
    if prompt_column.lower() not in columns:
        found = ", ".join(quote(h, 40) for h in header[:10] if h) or "no names"
        raise JobInputError(
            f"{kind}: the header has no column {quote(prompt_column)} (found {found}): name the prompt column 'prompt' or set 'prompt_column'"
        )
    wanted = {"prompt": columns[prompt_column.lower()]}
    if id_column.lower() in columns:
        wanted["id"] = columns[id_column.lower()]
    for name in ("system_prompt", "model", "max_tokens"):
        if name in columns:
            wanted[name] = columns[name]
    items: list[JobItem] = []
    for number, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        entry: dict[str, Any] = {}
        for name, column in wanted.items():
            cell = row[column] if column < len(row) else ""
            if name != "prompt" and not cell.strip():
                continue
            entry[name] = cell
        if "max_tokens" in entry:
            try:
                entry["max_tokens"] = int(entry["max_tokens"].strip())
            except ValueError:
                raise JobInputError(f"{unit} {number}: 'max_tokens' must be a whole number, got {quote(entry['max_tokens'], 40)}") from None
        if "id" not in entry:
            entry["id"] = str(len(items))
        items.append(_item(f"{unit} {number}", len(items), entry))
        _count(len(items), "the file")
    if not items:
        raise JobInputError(f"{kind} has a header but no rows")
    return items


def _check_xlsx_archive(content: bytes, shown: str) -> None:
    """Refuses what is not a workbook, or would unpack to too much, from the zip directory alone."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise JobInputError(f"{shown} is not an XLSX workbook (not a zip archive): save the sheet as .xlsx or as CSV UTF-8") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_XLSX_MEMBERS:
            raise JobInputError(f"{shown} holds {len(members)} files inside; an XLSX workbook has far fewer (at most {MAX_XLSX_MEMBERS} read)")
        unpacked = sum(m.file_size for m in members)
        if unpacked > MAX_XLSX_UNPACKED_BYTES:
            biggest = max(members, key=lambda m: m.file_size)
            raise JobInputError(
                f"{shown} would unpack to {unpacked / 2**20:.0f} MiB ({quote(biggest.filename, 60)} alone {biggest.file_size / 2**20:.0f} MiB, "
                f"from {len(content) / 2**20:.1f} MiB); at most {MAX_XLSX_UNPACKED_BYTES // 2**20} MiB is read: split the sheet into "
                "several files or save it as CSV UTF-8"
            )
        names = {m.filename for m in members}
        if "xl/workbook.xml" not in names and "[Content_Types].xml" not in names:
            raise JobInputError(f"{shown} is a zip archive but not an XLSX workbook (no xl/workbook.xml): save the sheet as .xlsx or as CSV UTF-8")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _xlsx(content: bytes, shown: str, prompt_column: str, id_column: str) -> list[JobItem]:
    """The first sheet: a header row, then one item per row (read-only, streamed, bounded)."""
    _check_xlsx_archive(content, shown)
    import openpyxl  # imported here: only XLSX input needs it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True, keep_links=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, SyntaxError) as exc:
        raise JobInputError(f"{shown} cannot be read as an XLSX workbook ({type(exc).__name__}): save it again as .xlsx, or as CSV UTF-8") from None
    try:
        if not workbook.worksheets:
            raise JobInputError(f"{shown} has no worksheet")
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True, max_col=MAX_XLSX_COLUMNS)
        try:
            header_row = next(rows, None)
        except Exception as exc:  # malformed sheet XML
            raise JobInputError(f"{shown}: the first sheet cannot be read ({type(exc).__name__}): save it again as .xlsx") from None
        if header_row is None or not any(_cell_text(v).strip() for v in header_row):
            raise JobInputError(f"{shown}: the first sheet is empty; it needs a header row with a 'prompt' column in row 1")
        header = [_cell_text(v).strip() for v in header_row]

        def cells() -> Iterator[tuple[int, list[str]]]:
            number = 1
            try:
                for values in rows:
                    number += 1
                    if number > MAX_XLSX_ROWS:
                        raise JobInputError(f"{shown}: the first sheet has more than {MAX_XLSX_ROWS} rows: split it into several jobs")
                    row = []
                    for value in values:
                        text = _cell_text(value)
                        if len(text) > MAX_PROMPT_CHARS:
                            raise JobInputError(f"row {number}: a cell has {len(text)} characters; at most {MAX_PROMPT_CHARS}")
                        row.append(text)
                    yield number, row
            except JobInputError:
                raise
            except Exception as exc:  # malformed sheet XML
                raise JobInputError(f"{shown}: row {number + 1} of the first sheet cannot be read ({type(exc).__name__})") from None

        return _table(f"{shown} (first sheet)", "row", header, cells(), prompt_column, id_column)
    finally:
        workbook.close()


def _check(where: str, text: str, max_chars: int) -> str:
    try:
        return check_text(text, max_chars=max_chars)
    except InputError as exc:
        raise JobInputError(f"{where} {exc}") from None


def _count(n: int, where: str) -> None:
    if n > MAX_JOB_ITEMS:
        raise JobInputError(f"{where} has more than {MAX_JOB_ITEMS} items: split it into several jobs")
    if n == 0:
        raise JobInputError(f"{where} is an empty list: give at least one prompt")


def _numbered(item: JobItem) -> str:
    return f"item {item.index + 1}"


def _item(where: str, index: int, entry: Any) -> JobItem:
    return parse_item(where, index, entry, max_prompt_chars=MAX_PROMPT_CHARS)
