"""What batch_chat accepts as `prompts`, and the errors that name the bad item."""

import json

import pytest

from gateway.call.batch import MAX_ITEMS, BatchInputError, parse_batch_input


def test_plain_text_lines_starting_with_a_bracket_are_prompts_not_broken_json() -> None:
    batch = parse_batch_input("[urgent] call the supplier\n[FYI] summarise the memo")
    assert [item.prompt for item in batch.items] == ["[urgent] call the supplier", "[FYI] summarise the memo"]
    assert not batch.json_format


@pytest.mark.parametrize("text", ["[1, 2", '["a", "b"', '[{"prompt": "x"}', "{"])
def test_text_that_is_meant_as_json_but_broken_says_so(text: str) -> None:
    with pytest.raises(BatchInputError, match="not valid JSON"):
        parse_batch_input(text)


def test_objects_keep_their_ids_and_options() -> None:
    batch = parse_batch_input(json.dumps([{"id": "a", "prompt": "x", "max_tokens": 5}, "y"]))
    assert [(i.id, i.prompt, i.max_tokens) for i in batch.items] == [("a", "x", 5), ("1", "y", None)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("[]", "empty list"),
        (json.dumps(["ok", {"id": "x"}]), r"prompts\[1\]"),
        (json.dumps(["ok", 3]), r"prompts\[1\]"),
        (json.dumps([{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}]), "used twice"),
        (json.dumps([{"prompt": "x", "max_tokens": 0}]), "max_tokens"),
        (json.dumps({"prompt": "x"}), "JSON array"),
        (json.dumps(["p"] * (MAX_ITEMS + 1)), f"at most {MAX_ITEMS}"),
    ],
)
def test_bad_input_names_the_problem_and_the_item(raw: str, message: str) -> None:
    with pytest.raises(BatchInputError, match=message):
        parse_batch_input(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        ('["fine", "\\ud800 broken"]', "lone surrogate"),
        ('[{"prompt": "x", "system_prompt": "\\udfff"}]', "lone surrogate"),
        ("line one\nline \ud800 two", "lone surrogate"),
        ('["x", 1e999]', "not finite"),
        ('[{"prompt": "x", "max_tokens": ' + "9" * 5000 + "}]", "thousands of digits"),
        ('[{"prompt": "x", "max_tokens": 1e300}]', "max_tokens"),
        (json.dumps([{"prompt": "x", "id": "\x07" * (2 << 20)}]), r"prompts\[0\]\.id is too long"),
        (json.dumps([{"prompt": "x", "model": "gpt\x00"}]), r"prompts\[0\]\.model"),
        (json.dumps([{"prompt": "x", "\x07" * 100_000: 1}]), "unknown keys"),
    ],
)
def test_hostile_prompts_are_refused_naming_the_parameter(raw: str, message: str) -> None:
    with pytest.raises(BatchInputError, match=message) as caught:
        parse_batch_input(raw)
    assert "prompts" in str(caught.value) and len(str(caught.value)) < 500 and "\x07" not in str(caught.value)
