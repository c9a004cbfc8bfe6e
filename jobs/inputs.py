"""A job's items, from a `prompts` text (as batch_chat takes it) or a file (JSONL, CSV or XLSX), all
checked before the job is accepted. Every problem names the line, row (or item) and what to fix.

The file's bytes come from a URL someone else chose, so every error names a line, row or column and a
limit and never repeats what the file holds. CSV and JSONL are read line by line from the bytes (never
a second copy of the whole text), each physical line at most MAX_LINE_CHARS and each row at most
MAX_CSV_COLUMNS columns, so ten million columns on one line are refused before csv splits them.

XLSX is read with openpyxl in read-only mode (the sheet's XML is streamed, not loaded), after the zip
directory was checked: an archive whose members would unpack to more than MAX_XLSX_UNPACKED_BYTES (a
zip bomb) is refused before anything is decompressed. CPython's zipfile never inflates a member past
the size its directory entry declares, so the check bounds memory; expat (2.4+) refuses entity
expansion bombs inside the XML. openpyxl still keeps every shared string in a list and builds a whole
row before `max_col` applies, so the XML is first counted with expat (no tree, constant memory):
shared strings, cells, cells in one row and elements openpyxl would keep are capped before openpyxl
opens the workbook."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any
from xml.parsers import expat

from gateway.call.batch import BatchInputError, BatchItem, check_unique_ids, parse_item
from gateway.call.batch import parse_prompts as parse_batch_prompts
from untrusted import InputError, parse_json, quote

MAX_JOB_ITEMS = 200_000
MAX_PROMPT_CHARS = 200_000
# The file as downloaded (after decompression): kept in memory whole while it is parsed, so this and the
# parsing caps below keep a plugin process under the 256 MiB the manifest reserves.
MAX_INPUT_BYTES = 32 * 1024 * 1024
MAX_LINE_CHARS = 1_000_000  # one physical line of a CSV or JSONL file
MAX_LINES = 5_000_000  # physical lines of a CSV or JSONL file, blank ones included
MAX_CSV_COLUMNS = 1_000
MAX_XLSX_SHARED_STRINGS = 500_000
MAX_XLSX_CELLS = 3_000_000  # in the whole workbook
MAX_XLSX_ROW_CELLS = 16_384  # Excel's own column limit
MAX_XLSX_ELEMENTS = 12_000_000  # XML elements in the whole workbook
MAX_XLSX_LOOSE_ELEMENTS = 200_000  # elements outside rows and shared strings: openpyxl keeps these
MAX_XLSX_NESTED_ELEMENTS = 65_536  # elements inside one row or one shared string
# csv refuses a field over 128 KiB by default, below MAX_PROMPT_CHARS; the line cap bounds a field anyway.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_CHARS))
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
        check_unique_ids(items, _numbered, echo=False)
        return items
    start = content[:4096].decode("utf-8-sig", errors="ignore").lstrip()[:1]
    if name.endswith((".jsonl", ".ndjson", ".json")) or (not name.endswith((".csv", ".tsv", ".txt")) and start and start in '{["'):
        items = _jsonl(_lines(content))
    else:
        items = _csv(content, prompt_column, id_column, delimiter="\t" if name.endswith(".tsv") else None)
    check_unique_ids(items, _numbered, echo=False)
    return items


def _lines(content: bytes) -> Iterator[str]:
    """The physical lines of UTF-8 `content` (a BOM dropped; ends \\n, \\r or \\r\\n, kept), decoded as
    they are read: each at most MAX_LINE_CHARS, at most MAX_LINES of them."""
    stream = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
    number = 0
    while True:
        try:
            line = stream.readline(MAX_LINE_CHARS + 1)
        except UnicodeDecodeError:
            raise JobInputError(
                f"the file is not UTF-8 text (an invalid byte on or shortly after line {number + 1}): save it as UTF-8 (CSV UTF-8 in Excel)"
            ) from None
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise JobInputError(f"line {number} is longer than {MAX_LINE_CHARS} characters: split the long text or the file")
        if number > MAX_LINES:
            raise JobInputError(f"the file has more than {MAX_LINES} lines: split it into several jobs")
        yield line


def _jsonl(lines: Iterable[str]) -> list[JobItem]:
    items: list[JobItem] = []
    for number, line in enumerate(lines, 1):
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


def _csv(content: bytes, prompt_column: str, id_column: str, delimiter: str | None) -> list[JobItem]:
    if delimiter is None:
        sample = content[:8192].decode("utf-8-sig", errors="ignore")
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(_lines(content), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                if len(row) > MAX_CSV_COLUMNS:
                    raise JobInputError(f"line {reader.line_num} has {len(row)} columns; at most {MAX_CSV_COLUMNS} are read")
                yield reader.line_num, row
        except csv.Error as exc:
            raise JobInputError(f"line {reader.line_num}: the CSV cannot be read ({_csv_problem(exc)})") from None

    numbered = rows()
    first = next(numbered, None)
    if first is None:
        raise JobInputError("the CSV file is empty: it needs a header row with a 'prompt' column")
    header = [h.strip() for h in first[1]]
    return _table("the CSV file", "line", header, numbered, prompt_column, id_column)


def _csv_problem(exc: csv.Error) -> str:
    """csv's own words, which never hold the file's text ("field larger than field limit (131072)",
    "new-line character seen in unquoted field", ...), at most one line of them."""
    return quote(str(exc).splitlines()[0] if str(exc) else "malformed", 120)


def _table(kind: str, unit: str, header: list[str], rows: Iterable[tuple[int, list[str]]], prompt_column: str, id_column: str) -> list[JobItem]:
    """Items from a header and rows of text cells (CSV or a sheet): the prompt and id columns by name
    (any case), optional system_prompt, model and max_tokens columns; blank rows are skipped."""
    columns: dict[str, int] = {}
    for i, h in enumerate(header):
        columns.setdefault(h.lower(), i)
    if prompt_column.lower() not in columns:
        # The names found are the file's text: say how many there are and where, never what they say.
        named = [i + 1 for i, h in enumerate(header) if h]
        found = f"{len(named)} named column{'s' if len(named) != 1 else ''}" + (f", at positions {_positions(named)}" if named else "")
        raise JobInputError(
            f"{kind}: the header has no column {quote(prompt_column)} ({found}): name the prompt column 'prompt' or set 'prompt_column'"
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
                raise JobInputError(
                    f"{unit} {number}: 'max_tokens' must be a whole number (column {wanted['max_tokens'] + 1} is not)"
                ) from None
        if "id" not in entry:
            entry["id"] = str(len(items))
        items.append(_item(f"{unit} {number}", len(items), entry))
        _count(len(items), "the file")
    if not items:
        raise JobInputError(f"{kind} has a header but no rows")
    return items


def _positions(numbers: list[int]) -> str:
    """1, 2, 3, 7 -> "1-3, 7" (at most 10 ranges shown)."""
    ranges: list[list[int]] = []
    for n in numbers:
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    shown = [f"{a}-{b}" if b > a else str(a) for a, b in ranges[:10]]
    return ", ".join(shown) + (" ..." if len(ranges) > 10 else "")


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
                f"{shown} would unpack to {unpacked / 2**20:.0f} MiB (its largest member alone {biggest.file_size / 2**20:.0f} MiB, "
                f"from {len(content) / 2**20:.1f} MiB); at most {MAX_XLSX_UNPACKED_BYTES // 2**20} MiB is read: split the sheet into "
                "several files or save it as CSV UTF-8"
            )
        names = {m.filename for m in members}
        if "xl/workbook.xml" not in names and "[Content_Types].xml" not in names:
            raise JobInputError(f"{shown} is a zip archive but not an XLSX workbook (no xl/workbook.xml): save the sheet as .xlsx or as CSV UTF-8")
        _count_xml(archive, members, shown)


class _XmlCounts:
    """What openpyxl would hold in memory for a workbook, counted from its XML with expat (no tree).
    Every element falls under some cap, so the count itself stops early on a hostile file."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.elements = self.shared_strings = self.cells = self.loose = 0
        self.row_cells = self.nested = 0
        self.depth = 0
        self.container_depth = 0  # depth of the <row> or <si> we are inside, 0 when outside both

    def start(self, name: str, _attrs: object) -> None:
        self.depth += 1
        self.elements += 1
        local = name.rsplit(":", 1)[-1]
        if self.elements > MAX_XLSX_ELEMENTS:
            self._refuse(f"holds more than {MAX_XLSX_ELEMENTS} XML elements")
        if self.container_depth:
            self.nested += 1
            if self.nested > MAX_XLSX_NESTED_ELEMENTS:
                self._refuse(f"has a row or shared string of more than {MAX_XLSX_NESTED_ELEMENTS} XML elements")
            if local == "c":
                self.cells += 1
                self.row_cells += 1
                if self.row_cells > MAX_XLSX_ROW_CELLS:
                    self._refuse(f"has a row of more than {MAX_XLSX_ROW_CELLS} cells")
                if self.cells > MAX_XLSX_CELLS:
                    self._refuse(f"has more than {MAX_XLSX_CELLS} cells")
            return
        if local in ("row", "si"):
            self.container_depth = self.depth
            self.nested = self.row_cells = 0
            if local == "si":
                self.shared_strings += 1
                if self.shared_strings > MAX_XLSX_SHARED_STRINGS:
                    self._refuse(f"has more than {MAX_XLSX_SHARED_STRINGS} shared strings (distinct texts)")
            return
        self.loose += 1
        if self.loose > MAX_XLSX_LOOSE_ELEMENTS:
            self._refuse(f"holds more than {MAX_XLSX_LOOSE_ELEMENTS} XML elements outside its rows")

    def end(self, _name: str) -> None:
        if self.depth == self.container_depth:
            self.container_depth = 0
        self.depth -= 1

    def _refuse(self, what: str) -> None:
        raise JobInputError(f"{self.shown} {what}; that is more than a job reads: split the sheet or save it as CSV UTF-8")


def _count_xml(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], shown: str) -> None:
    """Counts the XML of every member (sheets, shared strings, whatever the workbook's relations name)
    against the caps of _XmlCounts. Costs one inflate of the archive, which the size check bounded."""
    counts = _XmlCounts(shown)
    for member in members:
        if not member.filename.lower().endswith((".xml", ".rels")) or member.is_dir():
            continue
        parser = expat.ParserCreate(namespace_separator=":")
        parser.StartElementHandler = counts.start
        parser.EndElementHandler = counts.end
        counts.depth = counts.container_depth = 0
        try:
            with archive.open(member) as stream:
                while chunk := stream.read(1 << 20):
                    parser.Parse(chunk, False)
                parser.Parse(b"", True)
        except expat.ExpatError as exc:
            raise JobInputError(
                f"{shown} holds XML that cannot be read ({expat.ErrorString(exc.code)}, line {exc.lineno}): save it again as .xlsx"
            ) from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError):
            raise JobInputError(f"{shown} is a damaged zip archive (a member cannot be unpacked): save it again as .xlsx") from None


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


def _count(n: int, where: str) -> None:
    if n > MAX_JOB_ITEMS:
        raise JobInputError(f"{where} has more than {MAX_JOB_ITEMS} items: split it into several jobs")
    if n == 0:
        raise JobInputError(f"{where} is an empty list: give at least one prompt")


def _numbered(item: JobItem) -> str:
    return f"item {item.index + 1}"


def _item(where: str, index: int, entry: Any) -> JobItem:
    return parse_item(where, index, entry, max_prompt_chars=MAX_PROMPT_CHARS, echo=False)
