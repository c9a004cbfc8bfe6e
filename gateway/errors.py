"""The one error hierarchy every gateway failure is reported through.

Each error carries a message a workflow author can act on and a stable `code` that tools put in
their outputs. Messages are redacted before they are stored: an error object never holds the key.
"""

from __future__ import annotations

import array
import base64
import re
import sys
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"

# Characters a gateway echo of a key is made of ("Incorrect API key provided: sk-ab...", base64 in a
# Basic header, a percent-encoded URL): a redacted echo takes its whole run of these with it.
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~+/=%")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
# A secret longer than this is indexed by its first and last MAX_INDEXED_CHARS // 2 characters only (and
# still replaced whole): the index, and so memory, stays bounded whatever a caller hands over.
MAX_INDEXED_CHARS = 1024
# register_secret ignores longer text: no valid key is that long (GatewayConfig refuses keys over 512).
MAX_REGISTERED_CHARS = 4096
# What _echo_spans cuts a text into before looking closer: any MIN_ECHO-character window holds a whole
# chunk of QUAD characters starting at a multiple of QUAD (2 * QUAD - 1 <= MIN_ECHO), so a text none of
# whose chunks is a QUAD-character slice of a secret's grams holds no echo, and a text that has some is
# searched only around them. Cutting and the set test run in C: a call's texts cost microseconds.
_QUAD = 4
_CHUNKS = re.compile(f"(?s).{{{_QUAD}}}")
# An ASCII text (most are) is cut faster still: its bytes read as 4-byte integers, one per chunk.
_ASCII_CHUNKS = sys.byteorder if array.array("I").itemsize == _QUAD else None
# How many keys the process-wide last line of defence remembers (least recently used dropped first).
# Every shared client's key is touched on each use, so the live clients' keys are always among them.
MAX_KNOWN_SECRETS = 64


def secret_forms(secret: str) -> list[str]:
    """`secret` and the encodings in which it may travel or be echoed: percent-encoded (as in a URL), and
    base64 (standard and URL-safe) at each of the three alignments it can have inside a longer encoded
    string, such as the `user:key` of a Basic Authorization header. Of each base64 form only the
    characters that depend on the secret alone are kept, so it matches whatever preceded the secret."""
    forms = [secret]
    quoted = urllib.parse.quote(secret, safe="")
    if quoted != secret:
        forms += [quoted, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted)]
    raw = secret.encode("utf-8", "surrogatepass")
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode("ascii").rstrip("=")
        first = -(-8 * pad // 6)  # the first character built only from the secret's bits
        last = 8 * (pad + len(raw)) // 6  # one past the last such character
        stable = encoded[first:last]
        if stable:
            forms.append(stable)
            urlsafe = stable.replace("+", "-").replace("/", "_")
            if urlsafe != stable:
                forms.append(urlsafe)
    return forms


def widened_to_tokens(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Echo spans (sorted, merged) widened to the whole token around them. Each character is looked at by
    at most one widening: a span that reaches into the previous (already widened) one is merged with it
    and goes on from where that one stopped."""
    widened: list[tuple[int, int]] = []
    for start, end in spans:
        if widened and start <= widened[-1][1]:
            start, before = widened.pop()
            end = max(end, before)
        else:
            floor = widened[-1][1] if widened else 0
            while start > floor and text[start - 1] in _TOKEN_CHARS:
                start -= 1
        while end < len(text) and text[end] in _TOKEN_CHARS:
            end += 1
        widened.append((start, end))
    return widened


class SecretIndex:
    """The secrets a Redactor removes, indexed for matching in time linear in the message: the set of
    every MIN_ECHO-character slice of every form of every secret (refcounted, so secrets can be removed),
    plus the short secrets and forms, matched whole."""

    MIN_ECHO = 8

    def __init__(self) -> None:
        self._grams: dict[str, int] = {}
        self._quads: dict[str, int] = {}  # every QUAD-character slice of every gram (refcounted per gram)
        self._ascii_quads: set[int] = set()  # the ASCII ones among them, as _ASCII_CHUNKS reads them
        self._whole: dict[str, int] = {}  # replaced as a whole: forms shorter than MIN_ECHO, over-long forms
        self._secrets: dict[str, list[str]] = {}  # secret -> its grams' keys and whole forms, to remove it
        self._forms: dict[str, list[str]] = {}  # secret -> its forms (what a stream's tail is checked against)

    def __len__(self) -> int:
        return len(self._secrets)

    def __contains__(self, secret: object) -> bool:
        return secret in self._secrets

    def add(self, secret: str) -> None:
        if not secret or secret in self._secrets:
            return
        entries: list[str] = []
        for form in secret_forms(secret):
            if len(form) < self.MIN_ECHO or len(form) > MAX_INDEXED_CHARS:
                self._whole[form] = self._whole.get(form, 0) + 1
                entries.append("\0" + form)
            if len(form) >= self.MIN_ECHO:
                indexed = form if len(form) <= MAX_INDEXED_CHARS else form[: MAX_INDEXED_CHARS // 2] + "\0" + form[-MAX_INDEXED_CHARS // 2 :]
                for gram in {indexed[i : i + self.MIN_ECHO] for i in range(len(indexed) - self.MIN_ECHO + 1)}:
                    if "\0" not in gram:
                        count = self._grams.get(gram, 0)
                        self._grams[gram] = count + 1
                        if not count:
                            self._count_quads(gram, 1)
                        entries.append(gram)
        self._secrets[secret] = entries
        self._forms[secret] = secret_forms(secret)

    def remove(self, secret: str) -> None:
        self._forms.pop(secret, None)
        for entry in self._secrets.pop(secret, ()):
            table, key = (self._whole, entry[1:]) if entry.startswith("\0") else (self._grams, entry)
            count = table.get(key, 0) - 1
            if count > 0:
                table[key] = count
            elif table.pop(key, None) is not None and table is self._grams:
                self._count_quads(key, -1)

    def _count_quads(self, gram: str, change: int) -> None:
        quads = self._quads
        for quad in {gram[i : i + _QUAD] for i in range(len(gram) - _QUAD + 1)}:
            count = quads.get(quad, 0) + change
            if count > 0:
                quads[quad] = count
            else:
                quads.pop(quad, None)
            if _ASCII_CHUNKS and quad.isascii() and count <= 1:
                number = int.from_bytes(quad.encode("ascii"), _ASCII_CHUNKS)
                if count > 0:
                    self._ascii_quads.add(number)
                else:
                    self._ascii_quads.discard(number)

    @property
    def hold(self) -> int:
        """How many trailing characters of a text still arriving could begin an echo this index would only
        see whole (`StreamRedactor`): an echo of MIN_ECHO characters or more is seen from its first gram,
        a form matched whole only once complete."""
        longest = max((len(form) for form in self._whole), default=0)
        return max(self.MIN_ECHO, longest) - 1 if self._secrets else 0

    def may_begin_echo(self, tail: str) -> bool:
        """Whether `tail` (the end of a text still arriving) could be the start of an echo: it occurs in
        one of the forms."""
        return any(tail in form for forms in self._forms.values() for form in forms)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where `redact` would replace something in `text`: whole forms, and echoes widened to their run."""
        if not self._secrets:
            return []
        found = [(m.start(), m.start() + len(form)) for form in self._whole for m in re.finditer(re.escape(form), text)]
        return sorted(found + self._echo_spans(text))

    def redact(self, text: str) -> str:
        if not self._secrets:
            return text
        for form in self._whole:  # few: short secrets, and the over-long ones whole
            if form in text:
                text = text.replace(form, REDACTED)
        spans = self._echo_spans(text)
        if not spans:
            return text
        out: list[str] = []
        last = 0
        for start, end in spans:
            out.append(text[last:start])
            out.append(REDACTED)
            last = end
        out.append(text[last:])
        return "".join(out)

    def _echo_spans(self, text: str) -> list[tuple[int, int]]:
        """Where a MIN_ECHO-character slice of a secret occurs, widened to the run of key-like characters
        around it: one pass over the text, one set look-up per position."""
        grams, size = self._grams, self.MIN_ECHO
        if not grams or len(text) < size:
            return []
        # The usual case: no chunk of the text is part of a secret, so no echo.
        if _ASCII_CHUNKS and text.isascii():
            whole = len(text) - len(text) % _QUAD
            if self._ascii_quads.isdisjoint(memoryview(text.encode("ascii"))[:whole].cast("I")):
                return []
        chunks = _CHUNKS.findall(text)
        quads = self._quads
        if quads.keys().isdisjoint(chunks):
            return []
        # An echo starting at i holds the chunk starting at the multiple of QUAD in [i, i + QUAD - 1]:
        # only the starts just before a chunk found in the secrets are looked at, in order.
        last = len(text) - size
        starts: list[int] = []
        for k, chunk in enumerate(chunks):
            if chunk in quads:
                at = k * _QUAD
                first = max(at - _QUAD + 1, starts[-1] + 1 if starts else 0)
                starts.extend(range(first, min(at, last) + 1))
        spans: list[tuple[int, int]] = []
        for i in starts:
            if text[i : i + size] in grams:
                if spans and i <= spans[-1][1]:
                    spans[-1] = (spans[-1][0], i + size)
                else:
                    spans.append((i, i + size))
        return widened_to_tokens(text, spans)


def _without_bearer(text: str) -> str:
    """`text` with the token after any `Bearer` redacted. Every character the pattern matches in "bearer"
    lowers to that letter, so a text whose lower case lacks "bearer" is passed on without the (slower,
    case-insensitive) search."""
    if "bearer" not in text.lower():
        return text
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


class Redactor:
    """Removes secrets from text: whole, as partial echoes of at least eight characters, and in their
    encodings (base64, alone or inside `user:key`; percent-encoded); and any `Bearer <token>`. The cost
    is linear in the text, whatever the number and length of the secrets."""

    MIN_ECHO = SecretIndex.MIN_ECHO

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._index = SecretIndex()
        for secret in secrets:
            self._index.add(secret)

    def __call__(self, text: object) -> str:
        return _without_bearer(self._index.redact(text if type(text) is str else str(text)))

    @property
    def hold(self) -> int:
        """Trailing characters a stream must keep back until more arrives (see `StreamRedactor`)."""
        return max(self._index.hold, len("Bearer ") - 1)

    def held_tail(self, text: str) -> int:
        """How many trailing characters of `text`, still arriving, to keep back: the longest tail, of at
        most `hold` characters, that could begin an echo of a key or a `Bearer <token>`."""
        for size in range(min(self.hold, len(text)), 0, -1):
            tail = text[-size:]
            if self._index.may_begin_echo(tail) or "bearer ".startswith(tail.lower()):
                return size
        return 0

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where this redactor would replace something in `text` (sorted, possibly overlapping)."""
        return sorted(self._index.spans(text) + [(m.start(), m.end()) for m in _BEARER.finditer(text)])


# What the SDK's JSON on stdout (UTF-8) and Redis cannot carry, or Dify's database refuses in text: lone
# surrogates (a gateway's "\ud800" JSON escape) and NUL.
_UNCARRIABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def carriable(text: str) -> str:
    """`text` with every lone surrogate and NUL replaced by U+FFFD (a surrogate pair becomes its character),
    so one odd character costs one character, never the reply or the results around it."""
    if not _UNCARRIABLE.search(text):
        return text
    paired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return paired.replace("\x00", REPLACEMENT)


def clean_reply(text: str, redact: Redactor) -> str:
    """Reply text (or anything else a gateway's answer carries into outputs, files and Redis) as it may
    travel: the key and its encodings redacted, uncarriable characters replaced."""
    return carriable(redact(text)) if text else text


class StreamRedactor:
    """`clean_reply` for text that arrives in pieces: a key split across two chunks is still redacted.
    Each piece is passed on at once except a tail that could begin an echo (at most `redact.hold`
    characters, 7 for a usual key) and an echo still running at its end, kept until more arrives;
    `close` passes on the rest."""

    __slots__ = ("_pending", "_redact")

    # A pending text this long is passed on even inside an echo: memory and work stay bounded (an echo
    # is redacted still, only its run may be cut in two).
    MAX_PENDING = 65536

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact
        self._pending = ""

    def feed(self, piece: str) -> str:
        text = self._pending + piece
        cut = len(text) - self._redact.held_tail(text)
        if cut > 0 and len(text) < self.MAX_PENDING:
            moved = True
            while moved:  # never cut inside something that will be redacted
                moved = False
                for start, end in self._redact.spans(text):
                    if start < cut < end:
                        cut, moved = start, True
        if cut > 0 and "\ud800" <= text[cut - 1] <= "\udbff":
            cut -= 1  # a high surrogate waits for its pair
        if cut <= 0:
            self._pending = text
            return ""
        self._pending = text[cut:]
        return clean_reply(text[:cut], self._redact)

    def close(self) -> str:
        text, self._pending = self._pending, ""
        return clean_reply(text, self._redact)


class _KnownSecrets:
    """The process-wide last line of defence (the runtime's error reporting, tracebacks in the log): the
    most recently used keys, at most MAX_KNOWN_SECRETS of them. Bounded, and redacting with it costs the
    same whatever the process has seen."""

    def __init__(self, limit: int = MAX_KNOWN_SECRETS) -> None:
        self.limit = limit
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._index = SecretIndex()
        self._lock = threading.Lock()

    def touch(self, secret: str) -> None:
        if not secret or len(secret) > MAX_REGISTERED_CHARS:
            return
        with self._lock:
            if secret in self._recent:
                self._recent.move_to_end(secret)
                return
            self._recent[secret] = None
            self._index.add(secret)
            while len(self._recent) > self.limit:
                oldest, _ = self._recent.popitem(last=False)
                self._index.remove(oldest)

    def forget(self, secret: str) -> None:
        with self._lock:
            if self._recent.pop(secret, 0) is None:
                self._index.remove(secret)

    def clear(self) -> None:
        with self._lock:
            self._recent.clear()
            self._index = SecretIndex()

    def __len__(self) -> int:
        return len(self._recent)

    def redact(self, text: object) -> str:
        with self._lock:
            out = self._index.redact(str(text))
        return _without_bearer(out)


KNOWN_SECRETS = _KnownSecrets()


def register_secret(secret: str) -> None:
    """Remembers a key (as most recently used) so that the last line of defence (the runtime's error
    reporting) can redact it. Bounded: the least recently used keys beyond MAX_KNOWN_SECRETS are dropped."""
    KNOWN_SECRETS.touch(secret)


def redact_known_secrets(text: object) -> str:
    return KNOWN_SECRETS.redact(text)


def gateway_words(text: object, limit: int = 300) -> str:
    """What a gateway (or a library) said, as a message may repeat it: whitespace collapsed, at most
    `limit` characters, control and invisible characters shown as escapes. Looks at a bounded prefix only."""
    raw = text if isinstance(text, str) else str(text)
    words = " ".join(raw[: limit * 4].split())
    shown = "".join(_escaped(ch) for ch in words[:limit])
    return shown + ("…" if len(words) > limit or len(raw) > limit * 4 else "")


def _escaped(ch: str) -> str:
    if ch.isprintable() or ch == " ":
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class GatewayError(Exception):
    """Base of every error the gateway client raises. `str(error)` is safe to show to a user."""

    code = "gateway_error"
    retryable = False
    not_sent = False  # True when this call never reached the gateway (e.g. held back by the rate limit)

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class ConfigurationError(GatewayError):
    """A credential or parameter is invalid before anything was sent. `field` names what to fix."""

    code = "configuration"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FieldError(ConfigurationError, ValueError):
    """One value is invalid: `field` names it, `problem` says what is wrong and how to fix it.

    `str()` is the one formatting, "<field> <problem>" (e.g. "max_retries must be at least 0, got -1");
    a caller that words it its own way (a tool quoting a parameter) uses the two parts, never the string."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}", field=field)
        self.field: str = field
        self.problem = problem


class AuthenticationError(GatewayError):
    """401/403: the key is wrong, revoked, or lacks access to the model."""

    code = "authentication"


class BadRequestError(GatewayError):
    """400/404/409/413/422 that retrying cannot fix: the gateway's own message says why."""

    code = "bad_request"


class NotOpenAICompatibleError(GatewayError):
    """The base URL answered, but not like an OpenAI-compatible API (HTML, non-JSON, 404 on /models)."""

    code = "not_openai_compatible"


class RateLimitedError(GatewayError):
    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class UpstreamUnavailableError(GatewayError):
    """5xx, connection refused or reset, DNS or TLS failure: the gateway could not serve the call."""

    code = "upstream_unavailable"
    retryable = True


class GatewayTimeoutError(GatewayError):
    code = "timeout"
    retryable = True


class CircuitOpenError(UpstreamUnavailableError):
    """The breaker for (base URL, model) is open: the call failed fast without being sent."""

    code = "circuit_open"
    retryable = False


class StreamInterruptedError(GatewayError):
    """A stream ended before `[DONE]` or a finish reason. The text received so far is kept."""

    code = "stream_interrupted"

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.partial_text = partial_text
        self.partial_result: Any = None  # a ChatResult with estimated usage and cost, when known


class InBandStreamError(GatewayError):
    """The gateway sent `data: {"error": ...}` inside a 200 stream."""

    code = "stream_error"

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.partial_text = partial_text
        self.partial_result: Any = None  # a ChatResult with estimated usage and cost, when known
