"""auto_approve.limits and audit_sample: how the policy reads them, what a wrong one is told, and how the
engine applies them to a fooled model (in-process counters; the Redis script is in tests/redis)."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import yaml

from approval.engine import ApprovalRequest, route
from approval.limits import (
    AutoApprovalGate,
    Counter,
    LimitsUnavailable,
    ProcessLimitStore,
    Take,
    counters_for,
    hundredths,
    sample_point,
    sampled,
    window,
)
from approval.llm import LLMReply
from approval.policy import BUNDLED_POLICY_PATH, PeriodLimit, Policy, PolicyError
from gateway.state.keys import Keys
from tests.approval.fakes import guard_reply, is_guard_call

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
NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)


def policy_with(**auto: Any) -> Policy:
    data = yaml.safe_load(BUNDLED_POLICY_PATH.read_text(encoding="utf-8"))
    data["auto_approve"] = {**copy.deepcopy(ISSUE_AUTO_APPROVE), **auto}
    return Policy.load(data)


# ----------------------------------------------------------------------------- the policy


def test_the_issue_policy_reads_as_written() -> None:
    auto = policy_with().auto_approve
    assert auto is not None
    assert auto.limits == (
        PeriodLimit("per_requester", "day", 3, Decimal(800)),
        PeriodLimit("per_requester", "month", 20, Decimal(3000)),
        PeriodLimit("total", "day", 200, Decimal(20000)),
    )
    assert auto.audit_sample == Decimal("0.05")
    canonical = policy_with().canonical()["auto_approve"]
    assert canonical["limits"] == {"per_requester": {"day": {"count": 3, "amount": "800"}, "month": {"count": 20, "amount": "3000"}},
                                   "total": {"day": {"count": 200, "amount": "20000"}}}
    assert canonical["audit_sample"] == "0.05"


def test_limits_and_the_sample_change_the_policy_hash_and_their_absence_does_not() -> None:
    bundled = Policy.bundled()
    assert set(bundled.canonical()["auto_approve"]) == {"amount_max", "request_types", "max_risk"}
    assert policy_with().sha256 != policy_with(audit_sample=0.06).sha256 != bundled.sha256
    assert policy_with(limits={"total": {"day": {"count": 5}}}).sha256 != policy_with(limits={"total": {"day": {"count": 6}}}).sha256


def test_one_of_count_or_amount_and_every_period_are_accepted() -> None:
    limits = {"per_requester": {"hour": {"count": 1}, "week": {"amount": "99.50"}}, "total": {"month": {"count": 0}}}
    auto = policy_with(limits=limits, audit_sample=None).auto_approve
    assert auto is not None and auto.audit_sample is None
    assert auto.limits == (PeriodLimit("per_requester", "hour", 1, None), PeriodLimit("per_requester", "week", None, Decimal("99.50")),
                           PeriodLimit("total", "month", 0, None))


@pytest.mark.parametrize(
    ("auto", "message"),
    [
        ({"limits": {"per_user": {"day": {"count": 1}}}},
         "policy: 'auto_approve.limits': unknown field(s) per_user; allowed: per_requester, total"),
        ({"limits": {"total": {"daily": {"count": 1}}}},
         "policy: 'auto_approve.limits.total': unknown field(s) daily; allowed: day, hour, month, week"),
        ({"limits": {"total": {"day": {"count": 1, "sum": 5}}}},
         "policy: 'auto_approve.limits.total.day': unknown field(s) sum; allowed: amount, count"),
        ({"limits": {"total": {"day": {"count": -1}}}}, "policy: 'auto_approve.limits.total.day': count must not be negative"),
        ({"limits": {"total": {"day": {"count": 2.5}}}},
         "policy: 'auto_approve.limits.total.day': 'count' must be a whole number of auto-approvals from 0 to"),
        ({"limits": {"total": {"day": {"count": "three"}}}}, "policy: 'auto_approve.limits.total.day': count must be a number"),
        ({"limits": {"per_requester": {"day": {"amount": -800}}}},
         "policy: 'auto_approve.limits.per_requester.day': amount must not be negative"),
        ({"limits": {"per_requester": {"day": {"amount": 1e14}}}},
         "policy: 'auto_approve.limits.per_requester.day': 'amount' must be below 10,000,000,000,000"),
        ({"limits": {"per_requester": {"day": {}}}},
         "policy: 'auto_approve.limits.per_requester.day': give 'count' (auto-approvals) and/or 'amount'"),
        ({"limits": {"per_requester": {"day": 3}}}, "policy: 'auto_approve.limits.per_requester.day': must be a mapping"),
        ({"limits": {"per_requester": {}}}, "policy: 'auto_approve.limits.per_requester': name a period (hour, day, week, month)"),
        ({"limits": {}}, "policy: 'auto_approve.limits': name per_requester and/or total"),
        ({"limits": [3]}, "policy: 'auto_approve.limits': must be a mapping"),
        ({"audit_sample": 5}, "policy: 'auto_approve': 'audit_sample' is the fraction of would-be auto-approvals a person reviews, from 0 to 1"),
        ({"audit_sample": -0.1}, "policy: 'auto_approve': audit_sample must not be negative"),
        ({"audit_sample": "5%"}, "policy: 'auto_approve': audit_sample must be a number"),
        ({"audit_sample": True}, "policy: 'auto_approve': 'audit_sample' must be a number"),
        ({"sample": 0.1}, "policy: 'auto_approve': unknown field(s) sample; allowed: amount_max, audit_sample, limits"),
    ],
)
def test_a_wrong_limit_or_sample_says_what_to_fix(auto: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        policy_with(**auto)
    assert message in caught.value.message


# ----------------------------------------------------------------------------- periods, amounts, the sample


@pytest.mark.parametrize(
    ("period", "label", "end"),
    [
        ("hour", "h2026120710", datetime(2026, 12, 7, 11, tzinfo=UTC)),
        ("day", "d20261207", datetime(2026, 12, 8, tzinfo=UTC)),
        ("week", "w20261207", datetime(2026, 12, 14, tzinfo=UTC)),  # 7 Dec 2026 is a Monday
        ("month", "m202612", datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_periods_are_utc_calendar_periods(period: str, label: str, end: datetime) -> None:
    assert window(period, NOW) == (label, end)
    assert window(period, end - (end - NOW) / 1000)[0] == label  # still inside
    assert window(period, end)[0] != label


def test_amounts_count_in_hundredths_requests_rounded_up_limits_down() -> None:
    assert hundredths(Decimal("320.001"), up=True) == 32001
    assert hundredths(Decimal("800.009"), up=False) == 80000
    assert hundredths(Decimal(0), up=True) == 0


def test_the_sample_is_keyed_stable_and_exact_at_0_and_1() -> None:
    secret = b"k" * 32
    point = sample_point(secret, "w1", "REQ-1")
    assert point == sample_point(secret, "w1", "REQ-1")  # the same request is always in or out
    assert point != sample_point(b"j" * 32, "w1", "REQ-1") and point != sample_point(secret, "w2", "REQ-1")
    assert sampled(Decimal(1), 2**64 - 1) and not sampled(Decimal(0), 0) and not sampled(None, 0)
    drawn = sum(sampled(Decimal("0.05"), sample_point(secret, "w1", f"R-{n}")) for n in range(4000))
    assert 120 <= drawn <= 280  # about 5 % of 4000


def test_the_sample_secret_comes_from_the_api_key_and_never_is_it() -> None:
    one = AutoApprovalGate.for_workspace("sk-one", None, Keys.for_api_key("sk-one"))
    two = AutoApprovalGate.for_workspace("sk-two", None, Keys.for_api_key("sk-two"))
    assert one.sample_secret != two.sample_secret and b"sk-one" not in one.sample_secret
    assert "sk-one" not in repr(one) and one.scope == Keys.for_api_key("sk-one").scope
    assert one.store is AutoApprovalGate.for_workspace("sk-one", None, Keys.for_api_key("sk-one")).store


def test_a_folded_requester_shares_one_counter() -> None:
    limits = (PeriodLimit("per_requester", "day", 3, None),)
    parts = {counters_for(limits, who, NOW)[0].key_part for who in ("amy", "AMY", "\u0430my", "am\u200by", " amy ")}
    assert len(parts) == 1
    assert counters_for(limits, "bea", NOW)[0].key_part not in parts


# ----------------------------------------------------------------------------- the engine, with a fooled model


class Fooled:
    """Every assessment: low risk, approve; every guard: nothing addresses the reviewer."""

    def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any] | None) -> LLMReply:
        if is_guard_call(messages):
            return guard_reply()
        return LLMReply(text=json.dumps({"risk_level": "low", "approver_level": "manager", "auto_approve_ok": True,
                                         "reasons": ["routine"], "injection_suspected": False}), model="fooled")


def gate(store: Any = None) -> AutoApprovalGate:
    return AutoApprovalGate(store or ProcessLimitStore(), b"s" * 32, f"w-{uuid.uuid4().hex}")


def ask(policy: Policy, the_gate: AutoApprovalGate, requester: str = "amy", amount: Any = 100,
        request_id: str | None = None, now: datetime = NOW) -> Any:
    request = ApprovalRequest(request_id or f"R-{uuid.uuid4().hex[:8]}", "Train tickets to the client site.", amount,
                              "USD", "travel", "sales", requester)
    return route(request, policy, Fooled(), now=now, gate=the_gate)


def test_a_fooled_model_gets_at_most_the_count_then_a_person_decides() -> None:
    policy, shared = policy_with(audit_sample=0), gate()
    outcomes = [ask(policy, shared) for _ in range(5)]
    assert [o.auto_approve for o in outcomes] == [True, True, True, False, False]
    refused = outcomes[3]
    assert (refused.next_state, refused.approver_level, refused.injection_suspected) == ("pending", "manager", False)
    factor = next(f for f in refused.factors if f.startswith("limit:"))
    assert factor.startswith("limit:per_requester.day.count: this requester's 3 of 3 auto-approvals this day (UTC) are used")
    audit = refused.to_outputs()["audit"]["limits"]
    assert audit["result"] == "refused" and audit["exceeded"] == ["per_requester.day.count"] and audit["store"] == "process"
    assert audit["usage"]["per_requester.day"]["count"] == 3  # nothing counted for the refused one
    assert ask(policy, shared, requester="bea").auto_approve is True  # another requester still gets one
    assert ask(policy, shared, now=datetime(2026, 12, 8, 0, 0, 1, tzinfo=UTC)).auto_approve is True  # the next UTC day


def test_the_amount_limit_counts_base_currency_and_names_itself() -> None:
    policy, shared = policy_with(audit_sample=0), gate()
    assert ask(policy, shared, amount=450).auto_approve and ask(policy, shared, amount=340).auto_approve
    over = ask(policy, shared, amount="10.01")  # 790 used, 800 allowed
    assert over.auto_approve is False
    assert [f.split(":", 2)[1] for f in over.factors if f.startswith("limit:")] == ["per_requester.day.amount"]
    assert ask(policy, shared, amount=10).auto_approve is True  # exactly 800: allowed


def test_the_total_limit_holds_across_requesters() -> None:
    policy, shared = policy_with(audit_sample=0, limits={"total": {"day": {"count": 2}}}), gate()
    assert [ask(policy, shared, requester=who).auto_approve for who in ("amy", "bea", "cy")] == [True, True, False]


def test_the_same_request_routed_again_counts_once() -> None:
    policy, shared = policy_with(audit_sample=0), gate()
    first = ask(policy, shared, request_id="SAME-1")
    again = [ask(policy, shared, request_id="SAME-1") for _ in range(4)]
    assert first.auto_approve and all(o.auto_approve for o in again)
    assert again[-1].to_outputs()["audit"]["limits"]["result"] == "replayed"
    assert [ask(policy, shared).auto_approve for _ in range(3)] == [True, True, False]  # SAME-1 took one, not five


def test_requests_that_do_not_auto_approve_count_for_nothing() -> None:
    policy, shared = policy_with(audit_sample=0), gate()
    for _ in range(5):
        assert ask(policy, shared, amount=900).auto_approve is False  # over amount_max: never reaches the limits
    assert ask(policy, shared, amount=900).to_outputs()["audit"]["limits"] == {"result": "not_checked"}
    assert [ask(policy, shared).auto_approve for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize("fraction", [1, 0])
def test_audit_sample_one_sends_every_would_be_auto_approval_to_a_person_zero_none(fraction: int) -> None:
    policy, shared = policy_with(audit_sample=fraction, limits={"total": {"day": {"count": 1000}}}), gate()
    outcomes = [ask(policy, shared) for _ in range(20)]
    assert all(o.auto_approve is (fraction == 0) for o in outcomes)
    sampled_factors = [any(f.startswith("audit_sample: drawn for a person's review") for f in o.factors) for o in outcomes]
    assert all(sampled_factors) if fraction else not any(sampled_factors)
    if fraction:  # drawn before the limits: nothing was counted
        assert outcomes[0].next_state == "pending" and outcomes[0].to_outputs()["audit"]["limits"]["result"] == "sampled"
        assert ask(policy_with(audit_sample=0, limits={"total": {"day": {"count": 1}}}), shared).auto_approve is True


def test_the_sample_draws_the_same_request_id_every_time() -> None:
    policy, shared = policy_with(audit_sample=0.5, limits={"total": {"day": {"count": 10_000}}}), gate()
    first = [ask(policy, shared, request_id=f"S-{n}").auto_approve for n in range(40)]
    assert first == [ask(policy, shared, request_id=f"S-{n}").auto_approve for n in range(40)]
    assert 5 < sum(first) < 35


class Broken:
    name = "redis"

    def take(self, marker: str, counters: list[Counter], amount: int, marker_expires_at: int) -> Take:
        raise LimitsUnavailable("Redis at 127.0.0.1:1 refused the connection")


def test_counters_that_fail_send_the_request_to_a_person_and_say_so() -> None:
    outcome = ask(policy_with(audit_sample=0), gate(Broken()))
    assert (outcome.auto_approve, outcome.next_state) == (False, "pending")
    assert any(f.startswith("limit:unavailable: the auto-approval limits are kept in Redis, which failed (Redis at 127.0.0.1:1")
               for f in outcome.factors)


def test_a_policy_without_limits_or_sample_auto_approves_as_before() -> None:
    bundled, shared = Policy.bundled(), gate()
    outcomes = [ask(bundled, shared) for _ in range(10)]
    assert all(o.auto_approve for o in outcomes)
    assert outcomes[0].to_outputs()["audit"]["limits"]["result"] == "no_limits"
