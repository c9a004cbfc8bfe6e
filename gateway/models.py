"""Plain data the client takes and returns. No behaviour beyond conversion to dicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, Any]]
    model: str
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = None

    @classmethod
    def from_prompt(cls, prompt: str, *, system_prompt: str = "", **kwargs: Any) -> ChatRequest:
        messages: list[dict[str, Any]] = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.append({"role": "user", "content": prompt})
        return cls(messages=messages, **kwargs)

    def payload(self, *, stream: bool = False, include_usage: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": self.messages}
        for name in ("temperature", "top_p", "max_tokens", "stop", "seed", "response_format"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if stream:
            body["stream"] = True
            if include_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def with_model(self, model: str) -> ChatRequest:
        return ChatRequest(**{**self.__dict__, "model": model})


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    estimated: bool = False
    method: str = "gateway"  # "gateway" when reported, else the estimator used
    reasoning_tokens: int = 0  # part of completion_tokens (usage.completion_tokens_details.reasoning_tokens)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, data: dict[str, Any] | None) -> Usage | None:
        if not isinstance(data, dict):
            return None
        details = data.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens") if isinstance(details, dict) else 0
        completion_details = data.get("completion_tokens_details") or {}
        reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else 0
        try:
            completion = int(data.get("completion_tokens") or 0)
            reasoning_tokens = max(0, int(reasoning or 0))
            # OpenAI counts reasoning inside completion_tokens; a gateway that reports more reasoning than
            # completion tokens counted them apart: both are generated (and billed) tokens.
            if reasoning_tokens > completion:
                completion += reasoning_tokens
            return cls(
                prompt_tokens=int(data.get("prompt_tokens") or 0),
                completion_tokens=completion,
                cached_prompt_tokens=int(cached or 0),
                reasoning_tokens=reasoning_tokens,
            )
        except (TypeError, ValueError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "estimated": self.estimated,
            "method": self.method,
        }


@dataclass(frozen=True)
class CostBreakdown:
    """What a call cost, by part, at the price-table entry `model`; `source` says where the price comes from."""

    model: str  # the price-table entry used
    input_usd: float
    cached_input_usd: float
    output_usd: float
    total_usd: float
    uncached_prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int
    source: str
    reasoning_usd: float = 0.0  # reasoning tokens at the model's reasoning price (part of total_usd)
    reasoning_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RoutingDecision:
    requested: str
    model: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"requested": self.requested, "model": self.model, "reason": self.reason}


@dataclass
class ChatResult:
    text: str
    finish_reason: str | None
    model: str  # the model the gateway says it served
    requested_model: str
    usage: Usage
    latency_ms: float
    attempts: int
    request_id: str | None = None
    cost: CostBreakdown | None = None
    warnings: list[str] = field(default_factory=list)
    routing: RoutingDecision | None = None
    fallback_from: list[str] = field(default_factory=list)
    interrupted: bool = False
    ttft_ms: float | None = None
    reasoning: str = ""  # what the model reasoned, apart from the answer (`text`)
    cache: str = "bypass"  # hit | miss | bypass
    cost_saved_usd: float | None = 0.0  # on a cache hit: what the reply cost when it was made
    budget: dict[str, Any] | None = None  # budget use: {"remaining_usd": ..., "downgraded_from": ...}
    correlation_id: str = ""  # the call's id, sent to the gateway as X-Request-Id

    @property
    def cost_usd(self) -> float | None:
        return self.cost.total_usd if self.cost else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "requested_model": self.requested_model,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "latency_ms": round(self.latency_ms, 1),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 1),
            "attempts": self.attempts,
            "request_id": self.request_id,
            "correlation_id": self.correlation_id,
            "gateway_request_id": self.request_id,
            "cost_usd": self.cost_usd,
            "cost": self.cost.to_dict() if self.cost else None,
            "routing": self.routing.to_dict() if self.routing else None,
            "fallback_from": list(self.fallback_from),
            "interrupted": self.interrupted,
            "warnings": list(self.warnings),
            "reasoning": self.reasoning,
            "cache": self.cache,
            "cost_saved_usd": self.cost_saved_usd,
            "budget_remaining_usd": (self.budget or {}).get("remaining_usd"),
            "budget_exceeded": False,
        }


@dataclass(frozen=True)
class TextDelta:
    """A piece of streamed content."""

    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of streamed reasoning (reasoning_content, or a <think> block), kept apart from the answer."""

    text: str


@dataclass(frozen=True)
class StreamCompleted:
    """The last item a stream yields: the whole result."""

    result: ChatResult
