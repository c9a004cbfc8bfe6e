"""Connects the approval engine's LLM interface to the shared gateway client."""

from __future__ import annotations

from typing import Any

from approval.llm import LLMReply, LLMUnavailable, ResponseFormatUnsupported
from gateway import BadRequestError, CallOptions, ChatRequest, CircuitOpenError, GatewayClient, GatewayError, GatewayTimeoutError
from gateway.spend.budget import BudgetExceeded

ASSESSMENT_MAX_TOKENS = 600
# The guard answers one boolean and at most three short quotes.
GUARD_MAX_TOKENS = 200


class GatewayAssessmentLLM:
    def __init__(
        self, client: GatewayClient, model: str, *, max_tokens: int = ASSESSMENT_MAX_TOKENS, options: CallOptions | None = None
    ) -> None:
        self.client = client
        self.model = model
        self.max_tokens = max_tokens
        # The invocation's correlation id, caller identity and the administrator's budgets: an assessment is
        # spending like any other call, and a budget that refuses it leaves the policy's decision (fail closed).
        self.options = options

    def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any] | None) -> LLMReply:
        request = ChatRequest(
            messages=list(messages),
            model=self.model,
            temperature=0,
            max_tokens=self.max_tokens,
            response_format=response_format,
        )
        try:
            result = self.client.chat(request, self.options)
        except BudgetExceeded as exc:
            raise LLMUnavailable("failed", f"not sent: {exc}") from None
        except BadRequestError as exc:
            if response_format is not None and _about_response_format(str(exc)):
                raise ResponseFormatUnsupported(str(exc)) from None
            raise LLMUnavailable("failed", str(exc)) from None
        except CircuitOpenError as exc:
            raise LLMUnavailable("circuit_open", str(exc)) from None
        except GatewayTimeoutError as exc:
            raise LLMUnavailable("timeout", str(exc)) from None
        except GatewayError as exc:
            raise LLMUnavailable("failed", str(exc)) from None
        return LLMReply(text=result.text, cost_usd=result.cost_usd, latency_ms=result.latency_ms, model=result.model)


def _about_response_format(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in ("response_format", "json_schema", "json_object", "json mode"))
