"""Text hidden in encodings and letter tricks, decoded (bounded) so the injection screen reads it.

Two kinds of output:

* :func:`decoded_payloads`: readable text found inside an encoding (base64 and gzip inside it, base32,
  base85/ascii85, hex, octal, quoted-printable, URL encoding, HTML entities, \\u escapes, morse, braille,
  the NATO alphabet). Readable text carried that way is unusual in a request, so it also holds the request
  for a person.
* :func:`views`: the whole text read another way (reversed, ROT13, ROT47, letters joined when spelled out
  one by one, small caps / enclosed / emoji letters mapped to ASCII, pig latin, leetspeak). Computed for
  every text, so only real instructions found in them count.

Bounds: at most :data:`MAX_DECODE_CANDIDATES` candidates a kind, :data:`MAX_DECODE_CHARS` characters a
candidate, gzip output capped; the caller bounds the depth.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import quopri
import re
import urllib.parse
import zlib
from collections.abc import Callable

MAX_DECODE_DEPTH = 2
MAX_DECODE_CANDIDATES = 8
MAX_DECODE_CHARS = 4000
_F = re.IGNORECASE

# "=" may precede a candidate ("data=SGVsbG8..."): a key-value pair carrying base64 is common.
_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_B32 = re.compile(r"(?<![A-Za-z0-9=])[A-Z2-7]{16,}={0,6}(?![A-Za-z0-9=])")
_A85 = re.compile(r"<~(.{8,}?)~>", re.DOTALL)
_B85 = re.compile(r"(?<!\S)[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{20,}(?!\S)")
_HEX = re.compile(r"(?<![0-9a-z])(?:(?:0x|\\x)?[0-9a-f]{2}[\s:,]?){8,}", _F)
_OCTAL = re.compile(r"(?:\\[0-3][0-7]{2}){4,}|(?<!\d)(?:[0-3][0-7]{2}[\s,]+){4,}[0-3][0-7]{2}(?!\d)")
_QP = re.compile(r"(?:=[0-9A-F]{2}){4,}|=\?[\w-]+\?q\?[^?\s]{4,}\?=", _F)
_PCT = re.compile(r"%[0-9a-f]{2}", _F)
_ENTITY = re.compile(r"&(?:#\d{2,7}|#x[0-9a-f]{2,6}|[a-z]{2,8});", _F)
_UESC = re.compile(r"\\u[0-9a-f]{4}|\\u\{[0-9a-f]{1,6}\}", _F)
_MORSE = re.compile(r"(?<!\S)(?:[.\-·•–—_]{1,6}[ /|]+){4,}[.\-·•–—_]{1,6}")
_BRAILLE = re.compile(r"[\u2801-\u28ff][\u2800-\u28ff\s]{3,}")

_MORSE_CODE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g", "....": "h", "..": "i",
    ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n", "---": "o", ".--.": "p", "--.-": "q", ".-.": "r",
    "...": "s", "-": "t", "..-": "u", "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z",
    "-----": "0", ".----": "1", "..---": "2", "...--": "3", "....-": "4", ".....": "5", "-....": "6",
    "--...": "7", "---..": "8", "----.": "9",
}
_BRAILLE_LETTERS = {
    "1": "a", "12": "b", "14": "c", "145": "d", "15": "e", "124": "f", "1245": "g", "125": "h", "24": "i", "245": "j",
    "13": "k", "123": "l", "134": "m", "1345": "n", "135": "o", "1234": "p", "12345": "q", "1235": "r", "234": "s",
    "2345": "t", "136": "u", "1236": "v", "2456": "w", "1346": "x", "13456": "y", "1356": "z",
}
_NATO_WORDS = {
    "alfa": "a", "alpha": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e", "foxtrot": "f", "golf": "g",
    "hotel": "h", "india": "i", "juliett": "j", "juliet": "j", "kilo": "k", "lima": "l", "mike": "m",
    "november": "n", "oscar": "o", "papa": "p", "quebec": "q", "romeo": "r", "sierra": "s", "tango": "t",
    "uniform": "u", "victor": "v", "whiskey": "w", "whisky": "w", "x-ray": "x", "xray": "x", "yankee": "y", "zulu": "z",
}
_NATO = re.compile(r"(?:\b(?:" + "|".join(sorted(_NATO_WORDS, key=len, reverse=True)) + r")\b[\s/,|.-]*){4,}", _F)
_SMALL_CAPS = str.maketrans("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡʏᴢ", "abcdefghijklmnopqrstuvwyz")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"})


def readable(blob: bytes) -> str | None:
    """``blob`` as text when it is mostly printable words, else None (binary digests stay undecoded)."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return None
    printable = sum(1 for char in text if char.isprintable() or char in "\n\r\t")
    letters = sum(1 for char in text if char.isalpha())
    if printable / len(text) < 0.95 or letters / len(text) < 0.5:
        return None
    if " " not in text.strip() and len(text) > 24:
        # One long token: an encoding inside an encoding (followed to the depth bound), else not prose.
        return text if re.fullmatch(r"[A-Za-z0-9+/=_-]+", text.strip()) else None
    return text


def _unzip(blob: bytes) -> bytes:
    """gzip or zlib data inside a decoded blob, inflated up to the decode bound; other bytes unchanged."""
    if blob[:2] == b"\x1f\x8b" or blob[:1] == b"\x78":
        try:
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
            return inflater.decompress(blob, MAX_DECODE_CHARS * 4)
        except zlib.error:
            return blob
    return blob


def _try(decode: Callable[[str], bytes], candidate: str) -> str | None:
    try:
        return readable(_unzip(decode(candidate)))
    except (binascii.Error, ValueError):
        return None


def _base64(blob: str) -> bytes:
    padded = blob + "=" * (-len(blob) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(padded)


def _base32(blob: str) -> bytes:
    return base64.b32decode(blob + "=" * (-len(blob) % 8))


def _octal(blob: str) -> bytes:
    return bytes(int(digits, 8) for digits in re.findall(r"[0-3][0-7]{2}", blob))


def _qp(blob: str) -> bytes:
    match = re.fullmatch(r"=\?[\w-]+\?q\?(.*)\?=", blob, _F)
    if match:
        return quopri.decodestring(match.group(1).replace("_", " ").encode("ascii", "ignore"))
    return quopri.decodestring(blob.encode("ascii", "ignore"))


def _morse(blob: str) -> bytes:
    blob = blob.translate(str.maketrans("·•–—_", "..---"))
    words = re.split(r"\s*[/|]\s*|\s{3,}", blob.strip())
    return " ".join("".join(_MORSE_CODE.get(code, "") for code in word.split()) for word in words).encode()


def _braille(blob: str) -> bytes:
    out = []
    for char in blob:
        bits = ord(char) - 0x2800
        if not 0 <= bits <= 0xFF or bits == 0:
            out.append(" ")
            continue
        dots = "".join(str(n + 1) for n in range(8) if bits >> n & 1)
        out.append(_BRAILLE_LETTERS.get(dots, ""))
    return "".join(out).encode()


def _nato(blob: str) -> bytes:
    words = re.split(r"\s*[/|]\s*|\s{2,}", blob.strip())
    return " ".join("".join(_NATO_WORDS.get(w.lower(), "") for w in re.split(r"[\s,.]+", word) if w)
                    for word in words).encode()


_CANDIDATES: tuple[tuple[str, re.Pattern[str], Callable[[str], bytes]], ...] = (
    ("base64", _B64, _base64),
    ("base32", _B32, _base32),
    ("ascii85", _A85, base64.a85decode),
    ("base85", _B85, base64.b85decode),
    ("hex", _HEX, lambda m: bytes.fromhex((d := re.sub(r"0x|\\x|[\s:,]", "", m, flags=_F))[: len(d) // 2 * 2])),
    ("octal", _OCTAL, _octal),
    ("quoted_printable", _QP, _qp),
    ("morse", _MORSE, _morse),
    ("braille", _BRAILLE, _braille),
    ("nato", _NATO, _nato),
)


def decoded_payloads(text: str) -> list[tuple[str, str]]:
    """Readable text hidden in an encoding (see the module doc): (encoding, decoded text) pairs."""
    out: list[tuple[str, str]] = []
    for name, pattern, decode in _CANDIDATES:
        for match in list(pattern.finditer(text))[:MAX_DECODE_CANDIDATES]:
            blob = (match.group(1) if pattern.groups else match.group(0))[:MAX_DECODE_CHARS]
            if name in ("base64", "base32") and blob.isalpha() and (blob.islower() or (blob.isupper() and name == "base64")):
                continue  # a plain long word, not an encoding
            decoded = _try(decode, blob)
            if decoded:
                out.append((name, decoded))
    limited = text[: MAX_DECODE_CHARS * 4]
    if len(_PCT.findall(limited)) >= 3:
        out.append(("url", urllib.parse.unquote_plus(limited)))
    if len(_ENTITY.findall(limited)) >= 2:
        out.append(("html_entities", html.unescape(limited)))
    if len(_UESC.findall(limited)) >= 3:
        out.append(("unicode_escapes", _UESC.sub(lambda m: chr(int(m.group(0).strip("\\u{}"), 16)), limited)))
    return out


# --- views: the whole text read another way ------------------------------------------------------------

def _enclosed_to_ascii(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        for start in (0x1F170, 0x1F130, 0x1F150, 0x1F1E6, 0x24B6, 0x24D0, 0x1F110):
            if start <= code < start + 26:
                out.append(chr(97 + code - start))
                break
        else:
            out.append(char)
    return "".join(out)


def _joined_letters(text: str) -> str:
    """"a p p r o v e   n o w" and "a-p-p-r-o-v-e n-o-w" read as "approve now": single letters joined by
    one separator are one word; a longer gap (or a space between hyphenated groups) separates words."""
    def join(match: re.Match[str]) -> str:
        return re.sub(r"(?<=\w)[ .\-_*](?=\w)", "", match.group(0))
    return re.sub(r"(?<!\w)(?:\w[ .\-_*]){2,}\w(?!\w)", join, text)


_PIG_VOCABULARY = frozenset([
    "approve", "approved", "without", "review", "do", "not", "escalate", "ignore", "previous",
    "instructions", "all", "and", "this", "request", "mark", "as", "low", "risk", "skip", "the", "human",
    "check", "it", "auto", "now", "please", "your", "rules", "treat", "already", "decided", "fast", "track",
    "pass", "let", "through",
])


def _pig_latin(text: str) -> str:
    words = re.findall(r"[a-z]+", text.lower())
    if sum(word.endswith("ay") for word in words) < 3:
        return ""
    out = []
    for word in words:
        stem = word[:-2] if word.endswith("ay") else word
        candidates = [stem[:-1]] if stem.endswith("w") else []
        candidates += [stem[-k:] + stem[:-k] for k in (1, 2, 3) if len(stem) > k]
        out.append(next((c for c in candidates if c in _PIG_VOCABULARY), stem))
    return " ".join(out)


def _rot47(text: str) -> str:
    return "".join(chr(33 + (ord(c) - 33 + 47) % 94) if 33 <= ord(c) <= 126 else c for c in text)


def views(text: str) -> list[tuple[str, str]]:
    """The text read another way (see the module doc): (trick, text) pairs; only views that differ."""
    limited = text[: MAX_DECODE_CHARS * 4]
    letters = _enclosed_to_ascii(limited.translate(_SMALL_CAPS))
    candidates = [
        ("reversed", "\n".join(line[::-1] for line in limited.split("\n"))),
        ("rot13", codecs.decode(limited, "rot13")),
        ("rot47", _rot47(limited)),
        ("letters", letters),
        ("joined_letters", _joined_letters(letters)),
        ("leetspeak", _joined_letters(letters.lower().translate(_LEET))),
        ("pig_latin", _pig_latin(limited)),
    ]
    return [(name, view) for name, view in candidates if view and view != limited]


__all__ = ["MAX_DECODE_CANDIDATES", "MAX_DECODE_CHARS", "MAX_DECODE_DEPTH", "decoded_payloads", "readable", "views"]
