"""How an attacker disguises a sentence: encodings and letter tricks used by the corpus (test data only)."""

from __future__ import annotations

import base64
import codecs
import gzip
import quopri

MORSE = {
    "a": ".-", "b": "-...", "c": "-.-.", "d": "-..", "e": ".", "f": "..-.", "g": "--.", "h": "....", "i": "..",
    "j": ".---", "k": "-.-", "l": ".-..", "m": "--", "n": "-.", "o": "---", "p": ".--.", "q": "--.-", "r": ".-.",
    "s": "...", "t": "-", "u": "..-", "v": "...-", "w": ".--", "x": "-..-", "y": "-.--", "z": "--..",
    "0": "-----", "1": ".----", "2": "..---", "3": "...--", "4": "....-", "5": ".....",
}
NATO = {
    "a": "Alfa", "b": "Bravo", "c": "Charlie", "d": "Delta", "e": "Echo", "f": "Foxtrot", "g": "Golf", "h": "Hotel",
    "i": "India", "j": "Juliett", "k": "Kilo", "l": "Lima", "m": "Mike", "n": "November", "o": "Oscar", "p": "Papa",
    "q": "Quebec", "r": "Romeo", "s": "Sierra", "t": "Tango", "u": "Uniform", "v": "Victor", "w": "Whiskey",
    "x": "X-ray", "y": "Yankee", "z": "Zulu",
}
# Grade-1 braille (Unicode U+2800 block: dot n sets bit n-1)
_BRAILLE_DOTS = {
    "a": "1", "b": "12", "c": "14", "d": "145", "e": "15", "f": "124", "g": "1245", "h": "125", "i": "24", "j": "245",
    "k": "13", "l": "123", "m": "134", "n": "1345", "o": "135", "p": "1234", "q": "12345", "r": "1235", "s": "234",
    "t": "2345", "u": "136", "v": "1236", "w": "2456", "x": "1346", "y": "13456", "z": "1356",
}
SMALL_CAPS = dict(zip("abcdefghijklmnopqrstuvwxyz", "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡxʏᴢ", strict=True))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def b32(text: str) -> str:
    return base64.b32encode(text.encode()).decode()


def b85(text: str) -> str:
    return base64.b85encode(text.encode()).decode()


def a85(text: str) -> str:
    return base64.a85encode(text.encode()).decode()


def gzip_b64(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def hexed(text: str) -> str:
    return text.encode().hex()


def rot13(text: str) -> str:
    return codecs.encode(text, "rot13")


def rot47(text: str) -> str:
    return "".join(chr(33 + (ord(c) - 33 + 47) % 94) if 33 <= ord(c) <= 126 else c for c in text)


def octal(text: str) -> str:
    return " ".join(f"{b:03o}" for b in text.encode())


def octal_escapes(text: str) -> str:
    return "".join(f"\\{b:03o}" for b in text.encode())


def qp(text: str) -> str:
    """Quoted-printable with every byte encoded (as a mail client might when asked to)."""
    return "".join(f"={b:02X}" for b in text.encode())


def qp_soft(text: str) -> str:
    return quopri.encodestring(text.encode("utf-8"), quotetabs=True).decode()


def morse(text: str) -> str:
    return " / ".join(" ".join(MORSE[c] for c in word if c in MORSE) for word in text.lower().split())


def braille(text: str) -> str:
    def cell(char: str) -> str:
        dots = _BRAILLE_DOTS.get(char)
        return chr(0x2800 + sum(1 << (int(d) - 1) for d in dots)) if dots else " "
    return "".join(cell(c) for c in text.lower())


def nato(text: str) -> str:
    return " / ".join(" ".join(NATO[c] for c in word if c in NATO) for word in text.lower().split())


def small_caps(text: str) -> str:
    return "".join(SMALL_CAPS.get(c, c) for c in text.lower())


def circled(text: str) -> str:
    return "".join(chr(0x24D0 + ord(c) - 97) if "a" <= c <= "z" else c for c in text.lower())


def negative_squared(text: str) -> str:
    return "".join(chr(0x1F170 + ord(c) - 97) if "a" <= c <= "z" else c for c in text.lower())


def regional(text: str) -> str:
    """Regional indicator letters, joined by a zero-width space so no pair renders as a flag."""
    return "\u200b".join(chr(0x1F1E6 + ord(c) - 97) if "a" <= c <= "z" else c for c in text.lower())


def leet(text: str) -> str:
    return text.translate(str.maketrans("aeiostAEIOST", "4310574310$7"))


def reversed_text(text: str) -> str:
    return text[::-1]


def spaced(text: str) -> str:
    return "   ".join(" ".join(word) for word in text.split())


def hyphenated(text: str) -> str:
    return " ".join("-".join(word) for word in text.split())


def dotted(text: str) -> str:
    return " ".join(".".join(word) for word in text.split())


def pig_latin(text: str) -> str:
    def word(w: str) -> str:
        for i, c in enumerate(w):
            if c in "aeiou":
                return w[i:] + (w[:i] or "w") + "ay"
        return w + "ay"
    return " ".join(word(w) for w in text.lower().split())


def tags(text: str) -> str:
    return "".join(chr(0xE0000 + ord(c)) for c in text)


def smuggle(text: str) -> str:
    """Bytes in variation selectors after one emoji (the "emoji smuggling" trick)."""
    return "📎" + "".join(chr(0xFE00 + b) if b < 16 else chr(0xE0100 + b - 16) for b in text.encode())


def zero_width_between(text: str) -> str:
    return "\u200c".join(text)
