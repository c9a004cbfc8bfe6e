"""Job inputs: prompts text, JSONL and CSV files, every problem named with where it is."""

import json

import pytest

from jobs.inputs import JobInputError, parse_file, parse_prompts


def test_prompts_as_json_or_lines() -> None:
    items, json_format = parse_prompts(json.dumps(["a", {"id": "x", "prompt": "b", "model": "gpt-4.1", "max_tokens": 5}]))
    assert json_format and [(i.index, i.id, i.prompt) for i in items] == [(0, "0", "a"), (1, "x", "b")]
    assert items[1].model == "gpt-4.1" and items[1].max_tokens == 5
    items, json_format = parse_prompts("first\n\nsecond\n")
    assert not json_format and [i.prompt for i in items] == ["first", "second"]


def test_csv_with_columns_by_name_and_per_row_system_prompt_and_model() -> None:
    content = "Ticket;Body;system_prompt;model\nT1;hello, world;be brief;\nT2;second;;gpt-4.1\n".encode("utf-8-sig")
    items = parse_file(content, "in.csv", prompt_column="body", id_column="ticket")
    assert [(i.id, i.prompt, i.system_prompt, i.model) for i in items] == [
        ("T1", "hello, world", "be brief", None),
        ("T2", "second", None, "gpt-4.1"),
    ]


def test_jsonl_file() -> None:
    content = b'{"id": "a", "prompt": "one"}\n\n"two"\n'
    assert [(i.id, i.prompt) for i in parse_file(content, "in.jsonl")] == [("a", "one"), ("1", "two")]


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (b"PK\x03\x04....", "sheet.xlsx", "save the sheet as CSV"),
        (b"id,text\n1,a\n", "in.csv", "no column 'prompt'"),
        (b"id,prompt\n1,a\n1,b\n", "in.csv", "used twice"),
        (b'{"prompt": "a"}\n{"prompt": ""}\n', "in.jsonl", "line 2"),
        (b'{"prompt": "a", "colour": 1}\n', "in.jsonl", "unknown keys"),
        (b"\xff\xfe", "in.csv", "not UTF-8"),
        (b"id,prompt,max_tokens\n1,a,many\n", "in.csv", "line 2: 'max_tokens'"),
        (b"prompt\n", "in.csv", "no rows"),
    ],
)
def test_file_problems_say_where_and_what_to_fix(content: bytes, name: str, expected: str) -> None:
    with pytest.raises(JobInputError) as caught:
        parse_file(content, name)
    assert expected in str(caught.value)


def test_round_trip_of_an_item() -> None:
    items, _ = parse_prompts(json.dumps([{"id": 7, "prompt": "p", "system_prompt": "s"}]))
    again = type(items[0]).from_json(0, items[0].to_json())
    assert again == items[0]
