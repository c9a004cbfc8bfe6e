"""Hostile input files: each refused quickly, naming the line, column or limit, never quoting what the
file holds (it came from a URL someone else chose). The same files through the plugin runtime, with
the process's memory measured, are in tests/plugin/test_file_inputs_hostile.py."""

from __future__ import annotations

import time

import pytest

from devtools.hostile_files import SECRET, csv_with_columns, xlsx_with_a_wide_row, xlsx_with_shared_strings
from jobs import inputs
from jobs.inputs import JobInputError, parse_file


def refused(content: bytes, name: str) -> str:
    with pytest.raises(JobInputError) as caught:
        parse_file(content, name)
    message = str(caught.value)
    assert "hunter2" not in message and "DB_PASSWORD" not in message
    return message


def test_a_header_without_the_prompt_column_says_how_many_columns_and_where_not_what() -> None:
    message = refused(f"{SECRET},STRIPE_KEY=sk_live_x,,note\n1,2,3,4\n".encode(), "env.csv")
    assert "the header has no column 'prompt' (3 named columns, at positions 1-2, 4)" in message
    assert "sk_live" not in message


def test_ten_million_columns_on_one_line_are_refused_by_the_line_cap_quickly() -> None:
    started = time.monotonic()
    message = refused(csv_with_columns(10_000_000), "wide.csv")
    assert f"line 1 is longer than {inputs.MAX_LINE_CHARS} characters" in message
    assert time.monotonic() - started < 5


def test_too_many_columns_within_the_line_cap_are_refused_by_the_column_cap() -> None:
    assert f"line 1 has 1500 columns; at most {inputs.MAX_CSV_COLUMNS} are read" in refused(csv_with_columns(1500), "wide.csv")
    body = b"prompt,id\nfine,1\n" + b"x," * 2000 + b"\n"
    assert "line 3 has 2001 columns" in refused(body, "rows.csv")


def test_values_from_the_file_are_never_repeated_in_row_errors() -> None:
    assert "line 2: 'max_tokens' must be a whole number (column 2 is not)" in refused(
        f"prompt,max_tokens\na,{SECRET}\n".encode(), "in.csv"
    )
    assert "item 2: its id is used twice (also item 1)" in refused(f"id,prompt\n{SECRET},a\n{SECRET},b\n".encode(), "in.csv")
    assert "line 1 has 1 unknown key" in refused(f'{{"prompt": "a", "{SECRET}": 1}}\n'.encode(), "in.jsonl")
    assert "line 1.model is not a valid model name" in refused(f'{{"prompt": "a", "model": "{SECRET}\\u0007"}}\n'.encode(), "in.jsonl")


def test_a_csv_that_is_not_utf8_names_the_line() -> None:
    assert "not UTF-8 text (an invalid byte on or shortly after line" in refused(b"prompt\nok\n\xff\xfe\n", "in.csv")


def test_millions_of_shared_strings_are_refused_before_openpyxl_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("openpyxl opened the workbook")

    import openpyxl

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    content = xlsx_with_shared_strings(2_000_000)
    started = time.monotonic()
    message = refused(content, "strings.xlsx")
    assert f"has more than {inputs.MAX_XLSX_SHARED_STRINGS} shared strings" in message
    assert time.monotonic() - started < 10


def test_a_row_wider_than_excel_allows_is_refused() -> None:
    assert f"has a row of more than {inputs.MAX_XLSX_ROW_CELLS} cells" in refused(xlsx_with_a_wide_row(20_000), "wide.xlsx")


def test_a_workbook_within_the_caps_is_still_read() -> None:
    items = parse_file(xlsx_with_shared_strings(1000), "ok.xlsx")
    assert [(i.id, i.prompt) for i in items] == [("0", "0")]


def test_the_cell_cap_counts_the_whole_workbook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_XLSX_CELLS", 100)
    assert "has more than 100 cells" in refused(xlsx_with_a_wide_row(150), "many.xlsx")


def test_jsonl_lines_end_only_at_newlines_so_u2028_and_nel_inside_strings_read_back() -> None:
    content = '{"id": "a", "prompt": "one\u2028two\u0085three"}\r\n{"prompt": "b"}\n'.encode()
    assert [(i.id, i.prompt) for i in parse_file(content, "in.jsonl")] == [("a", "one\u2028two\u0085three"), ("1", "b")]


def test_a_csv_prompt_longer_than_csvs_default_field_limit_is_read() -> None:
    long_prompt = "p" * 150_000  # csv's default field limit is 131,072
    assert [i.prompt for i in parse_file(f"prompt\n{long_prompt}\n".encode(), "in.csv")] == [long_prompt]
