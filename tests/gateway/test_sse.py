"""The SSE decoder follows the specification whatever the framing and however the bytes are split."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.wire.sse import ServerSentEvent, SSEDecoder


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def datas(*chunks: bytes) -> list[str]:
    return [event.data for event in decode(*chunks)]


def test_lf_cr_and_crlf_line_ends_give_the_same_events() -> None:
    for newline in (b"\n", b"\r", b"\r\n"):
        stream = b"data: one" + newline + newline + b"data: two" + newline + newline
        assert datas(stream) == ["one", "two"], newline


def test_crlf_split_between_reads_is_one_line_end() -> None:
    assert datas(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n") == ["a", "b"]


def test_comments_and_keepalives_are_ignored() -> None:
    assert datas(b": keep-alive\n\ndata: x\n: mid-event comment\n\n") == ["x"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert datas(b'data: {"a":\ndata:  1}\n\n') == ['{"a":\n 1}']


def test_event_id_and_retry_fields() -> None:
    decoder = SSEDecoder()
    (event,) = decoder.feed(b"event: delta\nid: 7\nretry: 1500\ndata: x\n\n")
    assert (event.event, event.id, event.retry) == ("delta", "7", 1500)
    assert decoder.last_event_id == "7"
    (second,) = decoder.feed(b"data: y\n\n")
    assert second.event == "message" and second.id == "7"


def test_field_without_space_and_without_colon() -> None:
    assert datas(b"data:x\n\ndata\n\n") == ["x", ""]


def test_multibyte_character_split_across_reads_is_decoded_whole() -> None:
    payload = "data: café 🙂 中文\n\n".encode()
    chunks = [payload[i : i + 1] for i in range(len(payload))]
    assert datas(*chunks) == ["café 🙂 中文"]


def test_line_separator_characters_inside_content_are_not_line_ends() -> None:
    assert datas("data: a\u2028b\u0085c\u2029d\n\n".encode()) == ["a\u2028b\u0085c\u2029d"]


def test_bytes_are_utf8_whatever_the_charset_says() -> None:
    # requests decodes a charset-less text/event-stream as Latin-1 ("cafÃ©"); the spec says UTF-8.
    assert datas("data: café\n\n".encode()) == ["café"]


def test_leading_bom_is_stripped_even_when_split() -> None:
    assert datas(b"\xef", b"\xbb\xbfdata: x\n\n") == ["x"]


def test_event_without_closing_blank_line_is_discarded_at_end_of_stream() -> None:
    assert datas(b"data: complete\n\ndata: partial") == ["complete"]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert datas(b"data: \xff\n\n") == ["\ufffd"]


def framed(payloads: list[str], newline: bytes, comments: bool) -> bytes:
    out = b""
    for payload in payloads:
        if comments:
            out += b": keep-alive" + newline
        for line in payload.split("\n"):
            out += b"data: " + line.encode() + newline
        out += newline
    return out


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    payloads=st.lists(st.lists(texts, min_size=1, max_size=3).map("\n".join), min_size=1, max_size=6),
    newline=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    comments=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_split_of_a_valid_stream_yields_the_same_events(
    payloads: list[str], newline: bytes, comments: bool, cuts: list[int]
) -> None:
    stream = framed(payloads, newline, comments)
    points = sorted({cut % (len(stream) + 1) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert datas(*chunks) == payloads == datas(stream)


def test_openai_style_stream_round_trip() -> None:
    chunks = [{"choices": [{"delta": {"content": piece}}]} for piece in ("Hel", "lo")]
    stream = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks) + b"data: [DONE]\r\n\r\n"
    assert [json.loads(d) for d in datas(stream)[:-1]] == chunks
