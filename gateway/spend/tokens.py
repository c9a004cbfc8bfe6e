"""Offline token estimates, for gateways that report no usage and for reserving TPM budget.

tiktoken downloads its vocabularies on first use, which fails without network (a plugin in an
air-gapped Dify, this CI). We ship OpenAI's public o200k_base vocabulary (gzip, sha256-checked
against the hash tiktoken itself pins) and build the tiktoken encoding from it. If that ever fails,
a character heuristic takes over; every estimate says which method produced it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

VOCABULARY = Path(__file__).parent.parent / "data" / "o200k_base.tiktoken.gz"
# sha256 of the uncompressed file, as pinned in tiktoken_ext.openai_public.o200k_base.
VOCABULARY_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
# The o200k_base split pattern, copied from tiktoken_ext.openai_public (calling that function downloads).
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
TIKTOKEN_METHOD = "tiktoken o200k_base (bundled vocabulary)"
HEURISTIC_METHOD = "heuristic (about 4 characters per token, 1 per CJK character)"
# OpenAI's documented chat framing: ~3 tokens per message plus 3 to prime the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


@dataclass(frozen=True, slots=True)
class TokenEstimate:
    tokens: int
    method: str


_lock = threading.Lock()
_encoding: Any = None
_encoding_failed = False


def load_encoding() -> Any | None:
    """The tiktoken encoding built from the bundled vocabulary, or None when it cannot be built."""
    global _encoding, _encoding_failed
    if _encoding is not None or _encoding_failed:
        return _encoding
    with _lock:
        if _encoding is None and not _encoding_failed:
            try:
                _encoding = _build_encoding()
            except Exception as exc:  # any failure means: use the heuristic, and say so once
                _encoding_failed = True
                logger.warning("token estimates fall back to a heuristic: %s", exc)
    return _encoding


def _build_encoding() -> Any:
    import tiktoken

    raw = gzip.decompress(VOCABULARY.read_bytes())
    if hashlib.sha256(raw).hexdigest() != VOCABULARY_SHA256:
        raise ValueError(f"{VOCABULARY.name} does not match the o200k_base hash")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in raw.splitlines() if line)}
    return tiktoken.Encoding(
        name="o200k_base",
        pat_str=O200K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    )


def estimate_text_tokens(text: str) -> TokenEstimate:
    """Tokens in `text`. Every model is counted with o200k_base: exact for OpenAI's current
    models, an estimate (typically within 10-20 %) for the others."""
    encoding = load_encoding()
    if encoding is not None:
        return TokenEstimate(len(encoding.encode_ordinary(text)), TIKTOKEN_METHOD)
    return TokenEstimate(heuristic_tokens(text), HEURISTIC_METHOD)


def estimate_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> TokenEstimate:
    total, method = TOKENS_PER_REPLY, HEURISTIC_METHOD
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for value in message.values():
            estimate = estimate_text_tokens(_as_text(value))
            total += estimate.tokens
            method = estimate.method
    return TokenEstimate(total, method)


def heuristic_tokens(text: str) -> int:
    if not text:
        return 0
    wide = sum(1 for ch in text if _is_wide(ch))
    return wide + max(1, (len(text) - wide + 3) // 4) if len(text) > wide else wide


def _is_wide(ch: str) -> bool:
    code = ord(ch)
    return 0x2E80 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF or 0x3040 <= code <= 0x30FF


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts
        return " ".join(str(part.get("text", "")) if isinstance(part, Mapping) else str(part) for part in value)
    return "" if value is None else str(value)
