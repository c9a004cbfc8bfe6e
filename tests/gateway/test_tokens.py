"""Token estimates work offline and say how they were made."""

from gateway.spend import tokens
from gateway.spend.tokens import HEURISTIC_METHOD, TIKTOKEN_METHOD, estimate_prompt_tokens, estimate_text_tokens


def test_bundled_vocabulary_counts_like_o200k_base_without_network() -> None:
    estimate = estimate_text_tokens("hello world")
    assert estimate == tokens.TokenEstimate(2, TIKTOKEN_METHOD)
    assert estimate_text_tokens("The quick brown fox jumps over the lazy dog.").tokens == 10


def test_prompt_estimate_adds_chat_framing_per_message() -> None:
    one = estimate_prompt_tokens([{"role": "user", "content": "hello world"}])
    two = estimate_prompt_tokens([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}])
    assert one.tokens == 2 + 1 + tokens.TOKENS_PER_MESSAGE + tokens.TOKENS_PER_REPLY  # "user" is one token
    assert two.tokens > one.tokens + tokens.TOKENS_PER_MESSAGE


def test_heuristic_takes_over_and_says_so_when_the_vocabulary_cannot_load(monkeypatch) -> None:
    monkeypatch.setattr(tokens, "_encoding", None)
    monkeypatch.setattr(tokens, "_encoding_failed", False)
    monkeypatch.setattr(tokens, "VOCABULARY", tokens.VOCABULARY.with_name("missing.gz"))
    estimate = estimate_text_tokens("abcdefgh 中文")
    assert estimate.method == HEURISTIC_METHOD
    assert estimate.tokens == 2 + 3  # two CJK characters, nine other characters ≈ 3 tokens


def test_heuristic_never_returns_zero_for_text() -> None:
    assert tokens.heuristic_tokens("a") == 1
    assert tokens.heuristic_tokens("") == 0
