"""Hostile input files and answers for the file-input tests: each small on the wire and expensive for a
careless reader. Built in memory in a second or two; SECRET is what a test checks is never repeated."""

from __future__ import annotations

import io
import threading
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler

from devtools.file_server import Route, headers

SECRET = "DB_PASSWORD=hunter2-INTERNAL"


def _workbook(shared_strings: bytes, sheet: bytes) -> bytes:
    """The members openpyxl needs for a one-sheet workbook, with the given shared strings and sheet XML."""
    main = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            "</Types>",
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0"?><workbook {main} xmlns:r="{rel}"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        )
        z.writestr("xl/sharedStrings.xml", b'<?xml version="1.0"?><sst ' + main.encode() + b">" + shared_strings + b"</sst>")
        worksheet = b'<?xml version="1.0"?><worksheet ' + main.encode() + b"><sheetData>" + sheet + b"</sheetData></worksheet>"
        z.writestr("xl/worksheets/sheet1.xml", worksheet)
    return out.getvalue()


def xlsx_with_shared_strings(count: int) -> bytes:
    """`count` distinct shared strings (7 million: about 18 MB zipped); the sheet is a "prompt" header
    and one row holding the first of them ("0")."""
    strings = b"".join(b"<si><t>%d</t></si>" % i for i in range(count))
    return _workbook(strings, b'<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row><row r="2"><c r="A2" t="s"><v>0</v></c></row>')


def xlsx_with_a_wide_row(cells: int) -> bytes:
    row = b'<row r="1">' + b'<c t="inlineStr"><is><t>prompt</t></is></c>' * cells + b"</row>"
    return _workbook(b"", row)


def csv_with_columns(columns: int) -> bytes:
    """One header line of `columns` columns (10 million: 20 MB), the secret as the first name."""
    return SECRET.encode() + b",a" * (columns - 1) + b"\n"


def gzip_bomb(unpacked_mib: int) -> bytes:
    """`unpacked_mib` MiB of zeros as one gzip member (1 GiB: about 1 MB), compressed a MiB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * 2**20
    return b"".join(packer.compress(block) for _ in range(unpacked_mib)) + packer.flush()


def bomb_route(body: bytes) -> Route:
    """Answers with `body` as a gzip-encoded transfer (Content-Encoding: gzip)."""

    def send(handler: BaseHTTPRequestHandler) -> None:
        headers(handler, 200, {"Content-Type": "text/csv", "Content-Encoding": "gzip", "Content-Length": str(len(body))})
        handler.wfile.write(body)

    return send


def endless_route(total_mib: int = 1024) -> Route:
    """A chunked body of `total_mib` MiB, sent as fast as it is read."""

    def send(handler: BaseHTTPRequestHandler) -> None:
        headers(handler, 200, {"Content-Type": "text/csv", "Transfer-Encoding": "chunked"})
        chunk = b"prompt\n" + b"a" * (65536 - 7)
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        for _ in range(total_mib * 16):
            handler.wfile.write(frame)
        handler.wfile.write(b"0\r\n\r\n")

    return send


def trickle_route(stop: threading.Event, every_seconds: float = 1.0) -> Route:
    """One byte every `every_seconds` of a body that claims 100 KB, until `stop` is set."""

    def send(handler: BaseHTTPRequestHandler) -> None:
        headers(handler, 200, {"Content-Type": "text/csv", "Content-Length": "100000"})
        while not stop.wait(every_seconds):
            handler.wfile.write(b"a")
            handler.wfile.flush()

    return send


def redirect_route(location: str) -> Route:
    def send(handler: BaseHTTPRequestHandler) -> None:
        headers(handler, 302, {"Location": location, "Content-Length": "0"})

    return send


__all__ = [
    "SECRET",
    "bomb_route",
    "csv_with_columns",
    "endless_route",
    "gzip_bomb",
    "redirect_route",
    "trickle_route",
    "xlsx_with_a_wide_row",
    "xlsx_with_shared_strings",
]
