"""SSE decode throughput, side by side in one run: our gateway.wire.sse.SSEDecoder vs openai-python's
SSEDecoder (`openai._streaming`), on the same synthetic chat-completion stream (ASCII, CJK and emoji
deltas, ending in `data: [DONE]`) fed in 8 KiB reads and in 61-byte reads. Both must yield the same
data list; best of N rounds. Also prints, for information, whether each decoder gets a CR-framed
stream and a stream with U+2028 inside the content right.

    ./dev bench sse [--events 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from openai._streaming import SSEDecoder as OpenAISSEDecoder

from gateway.wire.sse import SSEDecoder

PIECES = [
    "Hello", " world", ",", " the", " quick", " brown", " fox", " jumps", " over", " lazy", " dogs", ".\n",
    "你好", "，世界", "。我们", "今天", "讨论", "流式", "输出", "。",
    "日本語の", "テキスト", "です", "Grüße", " aus", " Köln", " naïve", " café",
    " 🚀", " 👍🏽", " ✨", " 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]  # fmt: skip


def chat_stream(events: int, seed: int = 7, *, eol: str = "\n", extra: str = "") -> tuple[bytes, list[str]]:
    """An OpenAI-style chat-completion SSE body with `events` data events (plus [DONE]) and the data
    strings a correct decoder must yield. `extra` is appended to every content delta."""
    rng = random.Random(seed)
    base = {"id": "chatcmpl-9f8e7d6c5b4a39281706", "object": "chat.completion.chunk", "created": 1767225600, "model": "deepseek-v3.2"}
    datas: list[str] = []

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "system_fingerprint": "fp_3a5770e1b4", "choices": [choice]}

    datas.append(json.dumps(chunk({"role": "assistant", "content": ""}), ensure_ascii=False))
    for _ in range(events - 3):
        content = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 4))) + extra
        datas.append(json.dumps(chunk({"content": content}), ensure_ascii=False))
    datas.append(json.dumps(chunk({}, "stop"), ensure_ascii=False))
    usage = {"prompt_tokens": 42, "completion_tokens": events - 3, "total_tokens": events + 39}
    datas.append(json.dumps({**base, "choices": [], "usage": usage}, ensure_ascii=False))
    datas.append("[DONE]")
    body = "".join(f"data: {d}{eol}{eol}" for d in datas)
    if eol == "\n":  # a keep-alive comment now and then, as real gateways send
        body = ": keep-alive\n\n" + body
    return body.encode("utf-8"), datas


def reads(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def decode_ours(chunks: list[bytes]) -> list[str]:
    decoder = SSEDecoder()
    out: list[str] = []
    for chunk in chunks:
        out.extend(event.data for event in decoder.feed(chunk))
    out.extend(event.data for event in decoder.close())
    return out


def decode_openai(chunks: list[bytes]) -> list[str]:
    return [event.data for event in OpenAISSEDecoder().iter_bytes(iter(chunks))]


DECODERS: dict[str, Callable[[list[bytes]], list[str]]] = {"gateway.wire.sse.SSEDecoder": decode_ours, "openai SSEDecoder": decode_openai}


def best_seconds(fn: Callable[[list[bytes]], list[str]], chunks: list[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn(chunks)
        best = min(best, time.perf_counter() - started)
    return best


def correctness(events: int) -> None:
    cases = {
        "CR-only framing": chat_stream(events, eol="\r"),
        "U+2028/U+0085 in content": chat_stream(events, extra="\u2028line\u0085next"),
    }
    for case, (body, expected) in cases.items():
        verdicts = []
        for name, fn in DECODERS.items():
            results = [fn(reads(body, size)) for size in (8192, 61, 1)]
            wrong = sum(result != expected for result in results)
            got = results[0]
            verdict = "right" if not wrong else f"WRONG ({len(got)} events from 8 KiB reads, {len(expected)} expected)"
            verdicts.append(f"{name}: {verdict}")
        print(f"  {case:26} " + "; ".join(verdicts))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    body, expected = chat_stream(args.events)
    mb = len(body) / 1e6
    print(f"decoding {len(expected)} SSE events, {mb:.2f} MB ({len(body.decode()) / len(body):.2f} chars/byte), best of {args.rounds} rounds")
    for size in (8192, 61):
        chunks = reads(body, size)
        for name, fn in DECODERS.items():
            if fn(chunks) != expected:
                raise SystemExit(f"{name} decoded the {size}-byte reads wrongly")
        seconds = {name: best_seconds(fn, chunks, args.rounds) for name, fn in DECODERS.items()}
        print(f"{size}-byte reads ({len(chunks)} reads):")
        print(f"  {'decoder':26} {'MB/s':>8} {'events/s':>11} {'ours/openai':>12}")
        baseline = seconds["openai SSEDecoder"]
        for name, secs in seconds.items():
            print(f"  {name:26} {mb / secs:8.1f} {len(expected) / secs:11,.0f} {baseline / secs:11.2f}x")
    print("correctness (informational; 8 KiB, 61-byte and 1-byte reads):")
    correctness(min(args.events, 2_000))


if __name__ == "__main__":
    main()
