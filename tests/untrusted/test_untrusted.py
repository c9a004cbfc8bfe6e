"""Untrusted text becomes data within limits, and values come back into messages short and visible."""

import pytest

from untrusted import InputError, check_text, parse_json, parse_yaml, quote

LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        ('{"a":' * 100 + "1" + "}" * 100, "nested too deeply"),
        ('["\\ud800"]', "lone surrogate \\ud800"),
        ('{"\\udfff": 1}', "lone surrogate \\udfff"),
        ("[NaN]", "NaN is not a JSON number"),
        ("[1e400]", "not finite"),
        ("[" + "9" * 5000 + "]", "thousands of digits"),
        ("{not json", "not valid JSON"),
        ("x" * 1_000_001, "too large"),
    ],
)
def test_json_beyond_the_limits_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem.replace("\\", "\\\\")):
        parse_json(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (LAUGHS, r"uses a YAML alias \(\*a\) on line 2"),
        ("- " * 5_000 + "x", "nested too deeply"),
        ('name: "\\ud800"', "lone surrogate"),
        ("a: .nan", "not finite"),
        ("a: [1, 2", "line 1, column 9"),
        ("n: " + "9" * 5000, "thousands of digits"),
    ],
)
def test_yaml_beyond_the_limits_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_yaml(text)


def test_values_within_the_limits_parse_as_usual() -> None:
    assert parse_json('{"a": [1, 2.5, "é🙂"]}') == {"a": [1, 2.5, "é🙂"]}
    assert parse_yaml("version: 1\nrules:\n  - id: x\n    min_level: vp\n") == {"version": 1, "rules": [{"id": "x", "min_level": "vp"}]}
    assert parse_yaml("anchor: &a 1\n") == {"anchor": 1}  # an anchor alone expands nothing


def test_check_text_names_the_position_of_a_lone_surrogate_and_the_length() -> None:
    with pytest.raises(InputError, match="position 3"):
        check_text("abc\ud800")
    with pytest.raises(InputError, match="10 characters, at most 5"):
        check_text("x" * 10, max_chars=5)


def test_quote_is_short_and_shows_what_cannot_be_seen() -> None:
    assert quote("a\u200bb\x07'") == "'a\\u200bb\\x07\\''"
    long = quote("\x07" * (2 * 1024 * 1024))
    assert len(long) < 400 and long.endswith("(2097152 characters)")
    assert quote(10**5000) == "'<an integer of about 5001 digits>'"
    assert quote({"nested": ["anything"] * 10**5}) == "'<dict>'"
    assert quote(None) == "'None'"
