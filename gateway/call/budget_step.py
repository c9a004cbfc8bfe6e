"""The budget layer: each model's worst case is reserved against every budget that applies before
anything is sent (`gateway.spend.budget`), and settled with the real cost after. A refusal is BudgetExceeded,
a "not sent" outcome, or (when the administrator allows `downgrade`) the dearest cheaper priced model
that fits. A failed call is counted at what it may have cost (`failed_cost`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway.call.options import CallOptions
from gateway.call.stores import Stores
from gateway.errors import GatewayError
from gateway.models import ChatRequest, ChatResult
from gateway.spend.budget import BudgetExceeded, BudgetPolicy, BudgetStore, Hold, Refusal, charges_for, cost_nano, iso, worst_case_prompt_tokens
from gateway.spend.pricing import ModelPrice, PriceTable
from untrusted import quote


@dataclass(slots=True)
class Reserved:
    """What the budgets granted one model's call: the request as it is sent (a cheaper model, after a
    downgrade), the holds to settle, the price counted and the notes for the result."""

    request: ChatRequest
    holds: list[Hold] = field(default_factory=list)
    price: ModelPrice | None = None
    notes: list[str] = field(default_factory=list)


class BudgetStep:
    __slots__ = ("namespace", "prices", "stores")

    def __init__(self, stores: Stores, prices: PriceTable, namespace: str) -> None:
        self.stores = stores
        self.prices = prices
        self.namespace = namespace  # the gateway and key: part of every budget counter's name

    def reserve(self, request: ChatRequest, policy: BudgetPolicy, options: CallOptions) -> Reserved:
        """Reserves the request's worst case against every budget in force, or raises BudgetExceeded. With
        the administrator's `downgrade`, a request that does not fit goes to the dearest cheaper priced
        model that fits instead."""
        try:
            return self._reserve_for(request, policy, options)
        except BudgetExceeded as refused:
            if not policy.downgrade:
                raise
            first = refused
        own = self.prices.resolve(request.model)
        ceiling = own.input + own.output if own else float("inf")
        cheaper = sorted(
            ((p.input + p.output, name) for name in self.prices.models if (p := self.prices.resolve(name)) and p.input + p.output < ceiling),
            reverse=True,
        )
        for _, name in cheaper:
            try:
                reserved = self._reserve_for(request.with_model(name), policy, options)
            except BudgetExceeded:
                continue
            reserved.notes.append(f"budget: sent to the cheaper model {quote(name)} instead of {quote(request.model)} ({first.message})")
            return reserved
        raise first

    def settle_result(self, result: ChatResult, reserved: Reserved, policy: BudgetPolicy, model: str) -> None:
        """Settles a completed call with its real cost, and tells the result what the budgets have left."""
        cost = result.cost_usd
        price = reserved.price
        if cost is None and price is not None:
            cost = PriceTable({price.model: price}, {}).cost(price.model, result.usage).total_usd  # type: ignore[union-attr]
        holds = reserved.holds
        settle(holds, cost_nano(cost or 0.0))
        remaining = [h.remaining for h in holds if h.remaining is not None]
        if policy.call is not None:  # what this call left of its own limit
            remaining.append(round(policy.call * 1e9) - cost_nano(cost or 0.0))
        result.budget = {"remaining_usd": round(max(0, min(remaining)) / 1e9, 9) if remaining else None}
        if reserved.request.model != model:
            result.budget["downgraded_from"] = model
        result.warnings.extend(reserved.notes)

    def _reserve_for(self, request: ChatRequest, policy: BudgetPolicy, options: CallOptions) -> Reserved:
        reserved = Reserved(request)
        price = self.prices.resolve(request.model)
        if price is None:
            if policy.unpriced is None:
                raise BudgetExceeded(
                    f"not sent: model {quote(request.model)} has no known price, so its cost cannot be counted against a budget. "
                    "Add its price in price_overrides, or set 'unpriced' in the budgets credential",
                    budget="unpriced_model",
                    spent_usd=0.0,
                    limit_usd=0.0,
                    resets_at=None,
                )
            price = policy.unpriced
            reserved.notes.append(f"budget: model {quote(request.model)} has no known price; counted at the budgets' unpriced price")
        reserved.price = price
        worst = cost_nano(price.worst_case_usd(worst_case_prompt_tokens(request.messages), request.max_tokens or policy.max_tokens))
        if policy.call is not None and worst > round(policy.call * 1e9):
            raise BudgetExceeded(
                f"not sent: its worst-case cost {worst / 1e9:.6f} USD is over the per-call budget of {policy.call:.6f} USD "
                "(lower max_tokens, shorten the prompt or choose a cheaper model)",
                budget="call",
                spent_usd=0.0,
                limit_usd=policy.call,
                resets_at=None,
            )
        if options.batch_budget is not None:
            _take(options.batch_budget.store, [options.batch_budget.charge()], worst, reserved.holds)
        _take(self.stores.budgets, charges_for(policy, self.namespace, options.identity, time.time()), worst, reserved.holds)
        return reserved


def settle(holds: list[Hold], actual: int) -> None:
    for hold in holds:
        hold.store.settle(hold, actual)


def failed_cost(exc: GatewayError, reserved: int, price: ModelPrice | None) -> int:
    """What a failed call is counted at: nothing when the gateway answered with an error status or it
    was never sent; what an interrupted stream delivered; otherwise (the gateway may have billed a reply
    we never read) the whole reservation."""
    if exc.not_sent or exc.status is not None:
        return 0
    partial = getattr(exc, "partial_result", None)
    if isinstance(partial, ChatResult):
        cost = partial.cost_usd
        if cost is None and price is not None:
            breakdown = PriceTable({price.model: price}, {}).cost(price.model, partial.usage)
            cost = breakdown.total_usd if breakdown else None
        return cost_nano(cost) if cost is not None else reserved
    return reserved


def _take(store: BudgetStore, charges: list[Any], amount: int, holds: list[Hold]) -> None:
    if not charges:
        return
    try:
        granted = store.reserve(charges, amount)
    except GatewayError:
        settle(holds, 0)
        raise
    if isinstance(granted, Refusal):
        settle(holds, 0)
        charge = granted.charge
        resets = iso(charge.expires_at) if charge.expires_at else None
        raise BudgetExceeded(
            f"not sent: its worst-case cost {amount / 1e9:.6f} USD would pass the {charge.name} budget "
            f"({granted.spent / 1e9:.6f} of {charge.limit / 1e9:.6f} USD spent"
            + (f"; it resets at {resets})" if resets else ")"),
            budget=charge.name,
            spent_usd=granted.spent / 1e9,
            limit_usd=charge.limit / 1e9,
            resets_at=resets,
        )
    holds.append(granted)
