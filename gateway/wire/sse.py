"""Server-sent events decoded from raw bytes, to the WHATWG specification (§9.2.6).

Written by hand because the usual tools get the framing wrong: `requests.iter_lines` splits on
U+2028/U+0085 and decodes a charset-less `text/event-stream` as Latin-1, and several OpenAI-style
clients split only on "\\n" (CR and CRLF framing break) or keep only the last `data:` line.
Lines are split on bytes (CR, LF and CRLF can never occur inside a multibyte UTF-8 sequence), so a
character split across reads is decoded only once its line is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Feed bytes as they arrive; get back the events they complete.

    >>> decoder = SSEDecoder()
    >>> decoder.feed(b"data: a\\r\\ndata: b\\r\\n")
    []
    >>> decoder.feed(b"\\r\\n")
    [ServerSentEvent(data='a\\nb', event='message', id='', retry=None)]
    """

    __slots__ = ("_buffer", "_data", "_event", "_has_data", "_last_id", "_retry", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip_lf = False  # the previous read ended with CR: a leading LF belongs to it
        self._started = False  # a leading BOM is stripped once, at the very start
        self._data: list[str] = []
        self._has_data = False
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str:
        return self._last_id

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if not chunk:
            return []
        buffer = self._buffer
        buffer += chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(bytes(buffer)):
                return []
            self._started = True
            if buffer.startswith(_BOM):
                del buffer[: len(_BOM)]
        events: list[ServerSentEvent] = []
        start = 0
        end = len(buffer)
        if self._skip_lf and start < end:
            if buffer[start] == 0x0A:
                start += 1
            self._skip_lf = False
        lf = buffer.find(b"\n", start)
        while start < end:
            if lf != -1 and lf < start:
                lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf != -1 else end)
            if cr != -1:
                line_end, next_start = cr, cr + 1
                if next_start < end:
                    if buffer[next_start] == 0x0A:
                        next_start += 1
                else:
                    self._skip_lf = True
            elif lf != -1:
                line_end, next_start = lf, lf + 1
            else:
                break
            event = self._line(bytes(buffer[start:line_end]))
            if event is not None:
                events.append(event)
            start = next_start
        del buffer[:start]
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of stream. Per the specification an event without its closing blank line is
        discarded; callers that care (an interrupted completion) detect that from the payloads."""
        self._buffer.clear()
        self._data, self._has_data, self._event = [], False, ""
        return []

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            return self._dispatch()
        if raw[0] == 0x3A:  # ":" comment, e.g. keep-alive
            return None
        line = raw.decode("utf-8", errors="replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._has_data:
            self._event = ""
            return None
        event = ServerSentEvent("\n".join(self._data), self._event or "message", self._last_id, self._retry)
        self._data, self._has_data, self._event = [], False, ""
        return event
