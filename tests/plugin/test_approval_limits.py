"""The bound on a fooled model, through the plugin runtime: both model calls fooled (the assessment says
"low risk, approve", the guard says "nothing addresses the reviewer"), the policy's auto_approve limits and
audit_sample still decide how much is auto-approved, across two plugin processes sharing one Redis."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from approval.llm import SYSTEM_PROMPT
from approval.policy import BUNDLED_POLICY_PATH
from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess
from tests.approval.fakes import CLEAR, GUARD_MARKER
from tests.private_redis import PrivateRedis

ASSESSOR_MARKER = SYSTEM_PROMPT.split("\n", 1)[0]
ASSESS = {"risk_level": "low", "approver_level": "manager", "auto_approve_ok": True, "reasons": ["routine"],
          "injection_suspected": False}
ISSUE_AUTO_APPROVE: dict[str, Any] = {
    "amount_max": 500,
    "request_types": ["expense", "travel", "software"],
    "max_risk": "low",
    "limits": {
        "per_requester": {"day": {"count": 3, "amount": 800}, "month": {"count": 20, "amount": 3000}},
        "total": {"day": {"count": 200, "amount": 20000}},
    },
    "audit_sample": 0.05,
}


def policy_text(**auto: Any) -> str:
    data = yaml.safe_load(BUNDLED_POLICY_PATH.read_text(encoding="utf-8"))
    data["auto_approve"] = {**copy.deepcopy(ISSUE_AUTO_APPROVE), **auto}
    data["auto_approve"] = {key: value for key, value in data["auto_approve"].items() if value is not None}
    return yaml.safe_dump(data)


def fool(sim: SimulatorProcess) -> None:
    sim.configure(script_rules=[{"system_contains": ASSESSOR_MARKER, "reply": json.dumps(ASSESS)},
                                {"system_contains": GUARD_MARKER, "reply": CLEAR}])


def params(requester: str, policy: str, **overrides: Any) -> dict[str, Any]:
    return {"request_id": f"LIM-{uuid.uuid4().hex[:10]}", "content": "Train tickets to the client site, two travellers.",
            "amount": 120, "currency": "USD", "request_type": "travel", "department": "sales",
            "requester_id": requester, "policy": policy, **overrides}


def route_all(calls: list[tuple[PluginProcess, dict[str, Any]]], credentials: dict[str, Any]) -> list[dict[str, Any]]:
    """Every call in flight at once (each to its process), then every outcome in order."""
    pending = [plugin.invoke_tool("approval_route", call, credentials) for plugin, call in calls]
    outcomes = [invocation.outcome() for invocation in pending]
    for outcome in outcomes:
        assert outcome.ok, outcome.error
    return [outcome.variables for outcome in outcomes]


def factors_starting(out: dict[str, Any], prefix: str) -> list[str]:
    return [factor for factor in out["decision_factors"] if factor.startswith(prefix)]


@pytest.fixture(scope="module")
def second_plugin() -> Iterator[PluginProcess]:
    with PluginProcess() as process:
        yield process


@pytest.fixture
def shared_redis(private_redis: PrivateRedis, credentials: dict[str, Any]) -> dict[str, Any]:
    """A Redis of the test's own: its counters start at zero, whatever ran before today."""
    return {**credentials, "redis_url": private_redis.url}


@pytest.mark.redis
def test_ten_requests_over_two_processes_give_at_most_three_auto_approvals(plugin, second_plugin, sim, shared_redis) -> None:
    fool(sim)
    policy = policy_text(audit_sample=0)
    amy = f"amy-{uuid.uuid4().hex[:6]}"
    outs = route_all([((plugin, second_plugin)[n % 2], params(amy, policy)) for n in range(10)], shared_redis)
    approved = [out for out in outs if out["auto_approve"]]
    assert len(approved) == 3
    assert all(out["next_state"] == "approved" and out["guard_status"] == "clear" for out in approved)
    for out in outs:
        if not out["auto_approve"]:  # sent to a person at the usual level, saying which limit
            assert (out["next_state"], out["approver_level"], out["injection_suspected"]) == ("pending", "manager", False)
            assert factors_starting(out, "limit:per_requester.day.count: this requester's 3 of 3 auto-approvals"), out["decision_factors"]
            assert out["audit"]["limits"]["store"] == "redis" and out["audit"]["limits"]["exceeded"] == ["per_requester.day.count"]
    # Another requester still gets one, from either process; the same person spelled otherwise does not.
    bea = route_all([(second_plugin, params(f"bea-{uuid.uuid4().hex[:6]}", policy))], shared_redis)[0]
    assert bea["auto_approve"] is True and bea["audit"]["limits"]["usage"]["total.day"]["count"] == 4
    disguised = route_all([(plugin, params(amy.upper().replace("A", "\u0410"), policy))], shared_redis)[0]
    assert disguised["auto_approve"] is False and factors_starting(disguised, "limit:per_requester.day.count")


@pytest.mark.redis
def test_the_issue_policy_as_written_never_passes_its_limits(plugin, second_plugin, sim, shared_redis) -> None:
    """audit_sample 0.05 as well: whatever it draws, at most 3 auto-approvals, each other one says why."""
    fool(sim)
    policy, cy = policy_text(), f"cy-{uuid.uuid4().hex[:6]}"
    outs = route_all([((plugin, second_plugin)[n % 2], params(cy, policy)) for n in range(10)], shared_redis)
    assert sum(out["auto_approve"] for out in outs) <= 3
    for out in outs:
        if not out["auto_approve"]:
            assert factors_starting(out, "limit:") or factors_starting(out, "audit_sample:"), out["decision_factors"]


@pytest.mark.redis
def test_audit_sample_one_sends_every_would_be_auto_approval_to_a_person(plugin, second_plugin, sim, shared_redis) -> None:
    fool(sim)
    policy = policy_text(audit_sample=1)
    outs = route_all([((plugin, second_plugin)[n % 2], params(f"dee-{n}-{uuid.uuid4().hex[:6]}", policy)) for n in range(6)],
                     shared_redis)
    for out in outs:
        assert (out["auto_approve"], out["next_state"], out["guard_status"]) == (False, "pending", "clear")
        assert factors_starting(out, "audit_sample: drawn for a person's review (the policy sends 100 %")
        assert out["audit"]["limits"]["result"] == "sampled"


@pytest.mark.parametrize("sample", [0, None], ids=["audit_sample-0", "no-audit_sample"])
def test_audit_sample_zero_changes_nothing(plugin, sim, credentials, sample: int | None) -> None:
    """Without limits, audit_sample 0 and no audit_sample both auto-approve every request the fooled model
    passes (here without Redis: nothing is counted, there is nothing to count)."""
    fool(sim)
    policy = policy_text(audit_sample=sample, limits=None)
    outs = route_all([(plugin, params(f"eve-{uuid.uuid4().hex[:6]}", policy)) for _ in range(6)], credentials)
    assert all(out["auto_approve"] and out["next_state"] == "approved" for out in outs)
    assert all(not factors_starting(out, "audit_sample") for out in outs)
    assert {out["audit"]["limits"]["result"] for out in outs} == {"no_limits"}


def test_without_redis_each_process_counts_on_its_own(plugin, second_plugin, sim, credentials) -> None:
    """No redis_url: the limits hold within each process (the documented worst case: N processes x limit)."""
    fool(sim)
    policy, fay = policy_text(audit_sample=0), f"fay-{uuid.uuid4().hex[:6]}"
    first = route_all([(plugin, params(fay, policy)) for _ in range(5)], credentials)
    second = route_all([(second_plugin, params(fay, policy)) for _ in range(5)], credentials)
    assert sum(out["auto_approve"] for out in first) == 3 and sum(out["auto_approve"] for out in second) == 3
    assert {out["audit"]["limits"]["store"] for out in first + second} == {"process"}
    # The five run concurrently: which three were counted (and so carry the note) is up to the scheduler.
    counted = [out for out in first if out["auto_approve"]]
    assert all(any("counted across this process only (no redis_url)" in f for f in out["decision_factors"]) for out in counted)
