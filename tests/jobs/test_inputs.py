"""Job inputs: prompts text, JSONL, CSV and XLSX files, every problem named with where it is; a hostile
workbook (zip bomb, not a workbook at all) refused from the zip directory before anything is unpacked."""

import io
import json
import zipfile

import pytest

from jobs import inputs
from jobs.inputs import JobInputError, parse_file, parse_prompts


def workbook(rows: list[list[object]], title: str = "Tickets") -> bytes:
    """A small XLSX made here with openpyxl (the first sheet holds `rows`; a second sheet is ignored)."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    book.create_sheet("Other").append(["prompt"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


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
        (b"PK\x03\x04....", "sheet.xlsx", "'sheet.xlsx' is not an XLSX workbook"),
        (b"not a zip at all", "sheet.xlsx", "not a zip archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "old.xls", "save it as .xlsx"),
        (b"id,text\n1,a\n", "in.csv", "no column 'prompt'"),
        (b"id,prompt\n1,a\n1,b\n", "in.csv", "used twice"),
        (b'{"prompt": "a"}\n{"prompt": ""}\n', "in.jsonl", "line 2"),
        (b'{"prompt": "a", "colour": 1}\n', "in.jsonl", "line 1 has 1 unknown key: allowed are"),
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


def test_xlsx_first_sheet_with_the_csv_column_options() -> None:
    content = workbook(
        [
            ["Ticket", "Body", "system_prompt", "model", "max_tokens"],
            ["T1", "hello, world", "be brief", None, 50],
            [None, None, None, None, None],  # blank rows are skipped
            [1002, "second", None, "gpt-4.1", None],
            ["T3", 3.5, None, None, 7.0],  # numbers become text; 7.0 is a whole number
        ]
    )
    items = parse_file(content, "tickets.xlsx", prompt_column="body", id_column="ticket")
    assert [(i.id, i.prompt, i.system_prompt, i.model, i.max_tokens) for i in items] == [
        ("T1", "hello, world", "be brief", None, 50),
        ("1002", "second", None, "gpt-4.1", None),
        ("T3", "3.5", None, None, 7),
    ]
    # Found by content too (a Dify file whose name lost its extension), ids default to the row's place.
    assert [(i.id, i.prompt) for i in parse_file(workbook([["prompt"], ["a"], ["b"]]), "upload")] == [("0", "a"), ("1", "b")]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([["id", "text"], [1, "a"]], "'in.xlsx' (first sheet): the header has no column 'prompt'"),
        ([["id", "prompt"], [1, "a"], [1, "b"]], "used twice"),
        ([["prompt", "max_tokens"], ["a", "many"]], "row 2: 'max_tokens' must be a whole number"),
        ([["prompt"]], "has a header but no rows"),
        ([], "the first sheet is empty"),
    ],
)
def test_xlsx_problems_say_which_row(rows: list[list[object]], expected: str) -> None:
    with pytest.raises(JobInputError) as caught:
        parse_file(workbook(rows), "in.xlsx")
    assert expected in str(caught.value)


def test_xlsx_row_and_cell_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_XLSX_ROWS", 5)
    with pytest.raises(JobInputError, match="more than 5 rows"):
        parse_file(workbook([["prompt"]] + [[f"p{i}"] for i in range(10)]), "long.xlsx")
    monkeypatch.setattr(inputs, "MAX_PROMPT_CHARS", 100)
    with pytest.raises(JobInputError, match="row 3: a cell has 101 characters; at most 100"):
        parse_file(workbook([["prompt", "note"], ["fine", "ok"], ["fine", "x" * 101]]), "wide.xlsx")


def test_xlsx_zip_bomb_is_refused_from_the_directory_before_unpacking(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real workbook plus one member of 300 MiB of zeros (about 300 KiB compressed): refused, naming the
    file (never the member: its name is the file's content), without inflating it and without openpyxl ever opening the archive."""
    base = workbook([["prompt"], ["a"]])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        with dst.open("xl/media/padding.bin", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(300):
                member.write(block)
    bomb = out.getvalue()
    assert len(bomb) < 2 * 2**20

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("openpyxl opened a zip bomb")

    import openpyxl

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    with pytest.raises(JobInputError) as caught:
        parse_file(bomb, "Q3 tickets.xlsx")
    message = str(caught.value)
    assert "'Q3 tickets.xlsx' would unpack to 300 MiB" in message and "largest member alone 300 MiB" in message and "at most 256 MiB" in message
    assert "padding" not in message


def test_a_zip_that_is_not_a_workbook() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(JobInputError, match=r"'notes\.xlsx' is a zip archive but not an XLSX workbook"):
        parse_file(out.getvalue(), "notes.xlsx")
