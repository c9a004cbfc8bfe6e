"""A job's budgets, kept with the job so that every process working on it spends against the same
limits, through the same budget backend as every other call (Redis: one script reserves from every
counter at once, `gateway.spend.redis_budget`).

At submit the tool's budgets (the administrator's `budgets` credential tightened by the workflow's
`budgets`, `max_cost_usd` and `batch_budget_usd`) are stored in the job's settings as plain data,
with the submitter's Dify app and user as digests (never the ids), the same digests the period
counters of interactive calls use. A worker then calls the client with:

- a policy without period limits (so the client adds no charges of its own) that keeps `call`,
  `unpriced`, `downgrade` and `max_tokens`;
- a `JobBudget` as the call's batch budget: its store adds, to the job's own counter
  (`budget:job:<id>`, the limit `batch_budget_usd`, across every process), the period counters of
  the submitter's scopes at the time of the call, and reserves from all of them in one step.

An item whose worst case does not fit is not sent: it ends `not_run` with `error_code:
budget_exceeded` (the budget it hit in `budget`), and appears in failed_items.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gateway.spend.budget import (
    BudgetPolicy,
    Charge,
    Hold,
    Identity,
    Refusal,
    _id,
    period_window,
    to_nano,
)
from gateway.spend.pricing import ModelPrice

JOB_BUDGET_NAME = "job"


def budget_key(job_id: str) -> str:
    """The job's counter, as the budget store names it (`Keys.budget` of this in Redis)."""
    return f"job:{job_id}"


def policy_settings(policy: BudgetPolicy | None, identity: Identity) -> dict[str, Any] | None:
    """The policy as JSON-ready data for the job's settings (None when no budget applies)."""
    if policy is None or not policy.active:
        return None
    return {
        "limits": [[scope, period, usd] for scope, period, usd in policy.limits],
        "call": policy.call,
        "job": policy.batch,
        "unpriced": [policy.unpriced.input, policy.unpriced.output] if policy.unpriced is not None else None,
        "downgrade": policy.downgrade,
        "max_tokens": policy.max_tokens,
        "scope_ids": {"plugin": "all", "app": _id(identity.app_id), "user": _id(identity.user_id)},
    }


@dataclass(frozen=True)
class JobBudgetSettings:
    """What a worker needs from the job's stored budget settings."""

    policy: BudgetPolicy  # without period limits: those are charged by JobBudgetStore
    limits: tuple[tuple[str, str, float], ...]
    job_limit: float | None
    scope_ids: dict[str, str]

    @classmethod
    def from_settings(cls, data: dict[str, Any] | None) -> JobBudgetSettings | None:
        if not data:
            return None
        unpriced = data.get("unpriced")
        price = ModelPrice("unpriced", unpriced[0], unpriced[1], unpriced[0], "budgets credential (unpriced)") if unpriced else None
        policy = BudgetPolicy(
            call=data.get("call"),
            batch=data.get("job"),
            unpriced=price,
            downgrade=bool(data.get("downgrade")),
            max_tokens=int(data.get("max_tokens") or 4096),
        )
        limits = tuple((str(s), str(p), float(v)) for s, p, v in data.get("limits") or [])
        return cls(policy, limits, data.get("job"), dict(data.get("scope_ids") or {}))


class JobBudgetStore:
    """Reserves from the job's counter and the submitter's period counters together (one step in the
    budget backend), then lets the backend's hold settle as usual."""

    def __init__(self, inner: Any, settings: JobBudgetSettings, namespace: str, job_id: str) -> None:
        self.inner, self.settings, self.namespace, self.job_id = inner, settings, namespace, job_id

    def charges(self, now: float) -> list[Charge]:
        out = []
        if self.settings.job_limit is not None:
            out.append(Charge(budget_key(self.job_id), to_nano(self.settings.job_limit), 0, JOB_BUDGET_NAME))
        for scope, period, usd in self.settings.limits:
            stamp, ends = period_window(period, now)
            scope_id = self.settings.scope_ids.get(scope, "-")
            out.append(Charge(f"{self.namespace}:{scope}:{scope_id}:{period}:{stamp}", to_nano(usd), ends, f"{scope}/{period}"))
        return out

    def reserve(self, charges: list[Charge], amount: int) -> Hold | Refusal:
        return self.inner.reserve(self.charges(time.time()), amount)

    def settle(self, hold: Hold, actual: int) -> None:
        hold.store.settle(hold, actual)

    def warnings(self) -> list[str]:
        return []


@dataclass
class JobBudget:
    """The call option a worker passes as `batch_budget`: the client reserves `charge()` from `store`
    (which adds the rest of the job's charges)."""

    store: JobBudgetStore

    def charge(self) -> Charge:
        return Charge(budget_key(self.store.job_id), 0, 0, JOB_BUDGET_NAME)  # replaced by the store's charges
