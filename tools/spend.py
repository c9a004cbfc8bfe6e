"""What a chat call carries for spend control (the budget in force, the caller, the cache mode, its ids),
and what a workflow receives when a call was not sent for a budget."""

from __future__ import annotations

from typing import Any

from gateway import ChatRequest, GatewayClient
from gateway.client import CallOptions
from gateway.spend.budget import BudgetExceeded
from specs.chat_spec import SpendSpec
from tools.correlation import caller_identity, correlation_id, tool_label

SPEND_VARIABLES = (
    "reasoning", "cache", "cost_saved_usd", "budget_exceeded", "budget_remaining_usd",
    "budget", "budget_spent_usd", "budget_limit_usd", "budget_resets_at",
)


def call_options(tool: Any, client: GatewayClient, spend: SpendSpec | None = None) -> CallOptions:
    """Budgets (the administrator's, tightened by the workflow's), the caller's identity and the cache mode
    of one call; without `spend` the administrator's budgets alone and the default cache mode."""
    spend = spend or SpendSpec()
    return CallOptions(
        budget=spend.budget_under(client.config.budgets),
        identity=caller_identity(tool),
        cache=spend.cache,
        tool=tool_label(tool),
        correlation_id=correlation_id(tool),
    )


def budget_refusal_output(exc: BudgetExceeded, request: ChatRequest) -> dict[str, Any]:
    """What a workflow receives when a call was not sent for a budget: an outcome to branch on."""
    return {
        "model": request.model,
        "attempts": exc.attempts,
        "cost_usd": 0.0,
        "cost_saved_usd": 0.0,
        "cache": "bypass",
        "reasoning": "",
        "warnings": [str(exc)],
        **exc.outcome(),
    }
