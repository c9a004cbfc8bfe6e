"""Routing: the policy sets the floor, injection detection and the LLM may only raise it.

``route`` steps:

1. The policy decides the minimum approver level and risk (strictest matching rule wins).
2. The injection screen reads every text parameter (content, request type, department, requester id).
   A signal (or the model saying so) forces risk ``high``, the level one step above the policy's
   (capped at executive), no auto-approval and ``next_state`` ``escalated``. A *hold* (text about its
   own approval, reviewers, AI, risk or decoding) only rules out auto-approval.
3. With an LLM, the assessment is asked with ``response_format`` json_schema, then json_object, then
   none (each fallback only when the gateway refuses the format). The answer is validated; an
   invalid one is re-asked exactly once with the error appended; still invalid gives
   ``llm_status`` ``invalid_output``. A gateway failure gives ``failed`` or ``circuit_open``; no
   LLM gives ``skipped``. Anything else from the adapter counts as ``failed``.
4. Final level and risk are the maxima of the policy's and the model's: the model can only raise.
5. ``auto_approve`` needs all of: the policy's eligibility, ``llm_status`` ``ok``, the model's
   ``auto_approve_ok``, no injection suspicion, no hold, the final risk within the policy's
   ``auto_approve.max_risk``, the final level equal to the policy's, and then the guard: a separate
   call with its own prompt asking only whether the text tries to instruct the reviewer. ``clear``
   allows it; ``suspected`` escalates; any failure (``invalid_output``, ``failed``, ``timeout``,
   ``circuit_open``) counts as suspected for auto-approval. Every failure fails closed.
6. Then the bound on a fooled model (``approval.limits``): the policy's ``audit_sample`` may draw the
   request for a person (``audit_sample`` in ``decision_factors``), and the auto-approval must fit every
   ``auto_approve.limits`` counter, taken atomically; over one, a person decides
   (``limit:per_requester.day.count`` ...). Counters unreachable: a person decides (``limit:unavailable``).
7. ``next_state``: ``approved`` when auto-approved, ``escalated`` when injection is suspected,
   ``pending`` otherwise.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from approval.injection import Screening, screen
from approval.levels import APPROVER_LEVELS, higher_level, higher_risk, level_rank, risk_rank
from approval.limits import AutoApprovalGate, check
from approval.llm import (
    GUARD_RESPONSE_FORMATS,
    RESPONSE_FORMATS,
    Assessment,
    AssessmentLLM,
    GuardVerdict,
    LLMReply,
    LLMUnavailable,
    ResponseFormatUnsupported,
    build_guard_messages,
    build_messages,
    reask_messages,
    validate_assessment,
    validate_guard,
)
from approval.policy import PRIORITIES, Policy, PolicyDecision, money, normalize_name, parse_amount
from untrusted import InputError, check_text, quote

LLM_STATUSES: tuple[str, ...] = ("ok", "invalid_output", "failed", "circuit_open", "skipped")
MAX_CONTENT_CHARS = 20_000
MAX_ID_CHARS = 200
MAX_DEADLINE_HOURS = 24 * 366 * 10


def _text(value: Any, name: str, *, required: bool, limit: int = MAX_ID_CHARS) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise ValueError(f"{name} is required")
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    try:
        return check_text(value)
    except InputError as exc:
        raise ValueError(f"{name} {exc}") from None


@dataclass
class ApprovalRequest:
    """One request to route. ``__post_init__`` validates and normalises; errors are ``ValueError``
    whose message starts with the offending field's name."""

    request_id: str
    content: str
    amount: Decimal | str | float | int
    currency: str
    request_type: str
    department: str | None
    requester_id: str
    priority: str = "normal"
    deadline_hours: float | None = None
    # The request type and department as given (trimmed), before normalize_name: injection detection
    # reads these, since "ignore your rules" becomes "ignore-your-rules" once normalised.
    raw_request_type: str = field(init=False, default="", repr=False, compare=False)
    raw_department: str = field(init=False, default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        self.request_id = _text(self.request_id, "request_id", required=True)
        self.content = _text(self.content, "content", required=True, limit=MAX_CONTENT_CHARS)
        self.amount = parse_amount(self.amount, "amount")
        currency = _text(self.currency, "currency", required=False) or "USD"
        currency = currency.upper()
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            raise ValueError(f"currency must be a 3-letter code such as USD or EUR, got {quote(self.currency)}")
        self.currency = currency
        self.raw_request_type = _text(self.request_type, "request_type", required=True)
        self.raw_department = _text(self.department, "department", required=False)
        self.request_type = normalize_name(self.raw_request_type)
        self.department = normalize_name(self.raw_department)
        self.requester_id = _text(self.requester_id, "requester_id", required=True)
        priority = _text(self.priority, "priority", required=False).lower() or "normal"
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, got {quote(self.priority)}")
        self.priority = priority
        self.deadline_hours = _deadline_hours(self.deadline_hours)

    def canonical(self) -> dict[str, Any]:
        """The inputs as plain JSON values (amount as a normalised decimal string)."""
        amount = self.amount if isinstance(self.amount, Decimal) else parse_amount(self.amount)
        return {
            "request_id": self.request_id,
            "content": self.content,
            "amount": format(amount.normalize(), "f"),
            "currency": self.currency,
            "request_type": self.request_type,
            "department": self.department,
            "requester_id": self.requester_id,
            "priority": self.priority,
            "deadline_hours": self.deadline_hours,
        }

    def digest(self) -> str:
        """sha256 over the canonical JSON of the inputs (sorted keys, compact, UTF-8)."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _deadline_hours(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"deadline_hours must be a number of hours, got {quote(value)}")
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"deadline_hours must be a number of hours, got {quote(value)}") from None
    if not math.isfinite(hours):
        raise ValueError(f"deadline_hours must be a finite number, got {quote(value)}")
    if hours < 0:
        raise ValueError(f"deadline_hours must not be negative, got {quote(value)}")
    if hours > MAX_DEADLINE_HOURS:
        raise ValueError(f"deadline_hours must be at most {MAX_DEADLINE_HOURS}, got {quote(value)}")
    return hours


@dataclass
class RoutingOutcome:
    request: ApprovalRequest
    policy_version: str
    decision: PolicyDecision
    approver_level: str
    risk_level: str
    auto_approve: bool
    next_state: str
    llm_status: str
    injection_suspected: bool
    injection_signals: list[str]
    assessment: Assessment | None
    factors: list[str]
    cost_usd: float | None
    latency_ms: float | None
    sla_hours: float | None
    deadline: datetime | None
    decided_at: datetime
    llm_calls: int = 0
    llm_model: str | None = None
    llm_error: str | None = None
    inputs_digest: str = field(default="")
    policy_sha256: str = field(default="")
    guard_status: str = "skipped"
    guard_verdict: GuardVerdict | None = None
    guard_detail: dict[str, Any] = field(default_factory=dict)
    screening: Screening = field(default_factory=Screening)
    # What the audit sample and the limits decided (approval.limits.check), for the audit record.
    limits: dict[str, Any] = field(default_factory=lambda: {"result": "not_checked"})

    @property
    def matched_rules(self) -> list[str]:
        return list(self.decision.matched_rules)

    def to_outputs(self) -> dict[str, Any]:
        decision = {
            "approver_level": self.approver_level,
            "risk_level": self.risk_level,
            "auto_approve": self.auto_approve,
            "next_state": self.next_state,
            "injection_suspected": self.injection_suspected,
            "injection_signals": list(self.injection_signals),
            "policy_floor": {"approver_level": self.decision.approver_level, "risk_level": self.decision.risk_level},
            "amount_base": str(self.decision.amount_base),
        }
        audit = {
            "inputs_digest": self.inputs_digest,
            "policy_version": self.policy_version,
            "policy_sha256": self.policy_sha256,
            "matched_rules": self.matched_rules,
            "llm_assessment": self.assessment.to_dict() if self.assessment else None,
            "llm_status": self.llm_status,
            "llm_model": self.llm_model,
            "llm_calls": self.llm_calls,
            "llm_error": self.llm_error,
            "guard": {"status": self.guard_status, "verdict": self.guard_verdict.to_dict() if self.guard_verdict else None,
                      **self.guard_detail},
            "screening": self.screening.to_dict(),
            "limits": dict(self.limits),
            "decision": decision,
            "cost_usd": self.cost_usd,
            "decided_at": _iso(self.decided_at),
        }
        return {
            "risk_level": self.risk_level,
            "approver_level": self.approver_level,
            "auto_approve": self.auto_approve,
            "next_state": self.next_state,
            "matched_rules": self.matched_rules,
            "decision_factors": list(self.factors),
            "llm_status": self.llm_status,
            "guard_status": self.guard_status,
            "injection_suspected": self.injection_suspected,
            "policy_version": self.policy_version,
            "policy_sha256": self.policy_sha256,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
            "required_level": self.approver_level,
            "sla_hours": self.sla_hours,
            "deadline": _iso(self.deadline) if self.deadline else None,
            "audit": audit,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _raise_level(level: str) -> str:
    return APPROVER_LEVELS[min(level_rank(level) + 1, len(APPROVER_LEVELS) - 1)]


@dataclass
class _LLMResult:
    status: str
    assessment: Assessment | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    calls: int = 0
    model: str | None = None
    error: str | None = None
    replies: list[LLMReply] = field(default_factory=list)

    def record(self, reply: LLMReply) -> None:
        self.calls += 1
        self.replies.append(reply)
        if reply.model:
            self.model = reply.model
        if _finite(reply.cost_usd):
            self.cost_usd = (self.cost_usd or 0.0) + float(reply.cost_usd or 0.0)
        if _finite(reply.latency_ms):
            self.latency_ms = (self.latency_ms or 0.0) + float(reply.latency_ms or 0.0)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _assess(llm: AssessmentLLM, messages: list[dict[str, str]]) -> _LLMResult:
    result = _LLMResult(status="failed")
    try:
        reply, fmt = _complete_with_fallback(llm, messages, 0, result)
        checked = validate_assessment(reply.text)
        if isinstance(checked, str):
            retry = reask_messages(messages, reply.text if isinstance(reply.text, str) else "", checked)
            reply, _ = _complete_with_fallback(llm, retry, RESPONSE_FORMATS.index(fmt), result)
            checked = validate_assessment(reply.text)
        if isinstance(checked, str):
            result.status = "invalid_output"
            result.error = checked
        else:
            result.status = "ok"
            result.assessment = checked
    except LLMUnavailable as exc:
        result.status = exc.status if exc.status in ("failed", "circuit_open") else "failed"
        result.error = str(exc.message)
    except Exception as exc:  # a broken adapter fails closed like a failed call
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def _complete_with_fallback(
    llm: AssessmentLLM,
    messages: list[dict[str, str]],
    start: int,
    result: _LLMResult,
    formats: tuple[dict[str, Any] | None, ...] = RESPONSE_FORMATS,
) -> tuple[LLMReply, dict[str, Any] | None]:
    """Ask with the first accepted response_format from ``formats[start:]``."""
    for fmt in formats[start:]:
        try:
            reply = llm.complete(list(messages), fmt)
        except ResponseFormatUnsupported as exc:
            if fmt is None:
                raise LLMUnavailable("failed", f"the gateway refused a plain request: {exc}") from None
            continue
        if not isinstance(reply, LLMReply):
            raise LLMUnavailable("failed", f"the adapter returned {type(reply).__name__}, not LLMReply")
        result.record(reply)
        return reply, fmt
    raise LLMUnavailable("failed", "no response_format was accepted")  # unreachable: None is last


def _guard(llm: AssessmentLLM, fields: dict[str, str]) -> tuple[str, GuardVerdict | None, _LLMResult]:
    """Ask the guard once (no re-ask: anything but a valid answer is "suspected" for auto-approval)."""
    result = _LLMResult(status="failed")
    try:
        reply, _ = _complete_with_fallback(llm, build_guard_messages(fields), 0, result, GUARD_RESPONSE_FORMATS)
        verdict = validate_guard(reply.text)
        if isinstance(verdict, str):
            result.error = verdict
            return "invalid_output", None, result
        return ("suspected" if verdict.addresses_reviewer else "clear"), verdict, result
    except LLMUnavailable as exc:
        result.error = str(exc.message)
        status = exc.status if exc.status in ("failed", "timeout", "circuit_open") else "failed"
        return status, None, result
    except Exception as exc:  # a broken adapter fails closed
        result.error = f"{type(exc).__name__}: {exc}"
        return "failed", None, result


@dataclass
class _Judgement:
    """The decision as ``route`` builds it, step by step: level and risk only go up, auto-approval is only
    ever taken away, and every step says why in ``factors``."""

    level: str
    risk: str
    factors: list[str]
    injection: bool = False
    auto: bool = False

    def escalate(self, policy_level: str) -> None:
        """Injection suspected: one level above the policy's (capped at executive), risk at least high."""
        self.level = higher_level(self.level, _raise_level(policy_level))
        self.risk = higher_risk(self.risk, "high")


@dataclass(frozen=True)
class _GuardOutcome:
    status: str
    verdict: GuardVerdict | None
    detail: dict[str, Any]


def route(
    request: ApprovalRequest,
    policy: Policy,
    llm: AssessmentLLM | None,
    *,
    guard: AssessmentLLM | None = None,
    now: datetime | None = None,
    gate: AutoApprovalGate | None = None,
) -> RoutingOutcome:
    """Decide approver level, risk, auto-approval and next state (see the module docstring)."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    decision = policy.evaluate(request)
    judgement = _Judgement(decision.approver_level, decision.risk_level, list(decision.factors))
    free_text = _free_text(request)
    screening = screen(free_text)
    _note_screening(screening, judgement.factors)
    llm_result = _assessment_step(llm, request, policy, decision, judgement)
    judgement.injection = bool(screening.signal_names()) or bool(
        llm_result.assessment and llm_result.assessment.injection_suspected
    )
    if judgement.injection:
        judgement.escalate(decision.approver_level)
    judgement.auto = _policy_and_model_allow_auto(decision, policy, llm_result, judgement)
    _apply_holds(screening, judgement)
    guard_outcome = _guard_step(llm, guard, free_text, llm_result, decision, judgement)
    limits_audit: dict[str, Any] = {"result": "not_checked"}
    if judgement.auto:
        judgement.auto, limits_audit = _sample_and_limits(gate, policy, request, decision, now, judgement.factors)
    if judgement.auto:
        judgement.factors.append("auto-approved: policy allows it, the LLM agrees and the guard found no instructions")
    return _outcome(request, policy, decision, judgement, llm_result, screening, guard_outcome, limits_audit, now)


def _free_text(request: ApprovalRequest) -> dict[str, str]:
    """Every text parameter, as given: normalize_name would turn "ignore your rules" into
    "ignore-your-rules", which the phrase patterns no longer see."""
    return {
        "content": request.content,
        "request_type": request.raw_request_type or request.request_type,
        "department": request.raw_department or request.department or "",
        "requester_id": request.requester_id,
    }


def _note_screening(screening: Screening, factors: list[str]) -> None:
    if screening.hidden:
        # The models are sent the same revealed text (approval.llm); the audit says what was hidden.
        factors.append(f"hidden characters removed or shown before screening and before any model read the text: {screening.hidden_summary()}")
    if screening.signal_names():
        where = ", ".join(f"{name} in {field_name}" for field_name, names in screening.signals.items() for name in names)
        factors.append(f"injection suspected in the request text: {where}")


def _assessment_step(llm: AssessmentLLM | None, request: ApprovalRequest, policy: Policy, decision: PolicyDecision,
                     judgement: _Judgement) -> _LLMResult:
    """Ask the model (when there is one) and let its answer raise the level and risk, never lower them."""
    if llm is None:
        judgement.factors.append("no LLM assessment (rules only)")
        return _LLMResult(status="skipped")
    result = _assess(llm, _assessment_messages(request, policy, decision))
    assessment = result.assessment
    if assessment is None:
        judgement.factors.append(f"LLM assessment unavailable ({result.status}): policy decision only, no auto-approval")
        return result
    if level_rank(assessment.approver_level) > level_rank(judgement.level):
        judgement.factors.append(f"LLM raised the approver level to {assessment.approver_level}")
    if risk_rank(assessment.risk_level) > risk_rank(judgement.risk):
        judgement.factors.append(f"LLM raised the risk to {assessment.risk_level}")
    judgement.level = higher_level(judgement.level, assessment.approver_level)
    judgement.risk = higher_risk(judgement.risk, assessment.risk_level)
    judgement.factors.extend(f"LLM: {reason}" for reason in assessment.reasons)
    if assessment.injection_suspected:
        judgement.factors.append("LLM suspects prompt injection")
    return result


def _assessment_messages(request: ApprovalRequest, policy: Policy, decision: PolicyDecision) -> list[dict[str, str]]:
    return build_messages(
        request.content,
        {
            "request_type": request.request_type,
            "department": request.raw_department or "(none)",
            "requester_id": request.requester_id,
            "amount": f"{request.amount} {request.currency}",
            "amount_in_base": f"{money(decision.amount_base)} {policy.base_currency}",
            "priority": request.priority,
            "deadline_hours": request.deadline_hours if request.deadline_hours is not None else "(none)",
        },
        {
            "min_approver_level": decision.approver_level,
            "min_risk_level": decision.risk_level,
            "matched_rules": decision.matched_rules,
            "policy_allows_auto_approval": decision.auto_approve_eligible,
        },
    )


def _policy_and_model_allow_auto(decision: PolicyDecision, policy: Policy, llm_result: _LLMResult,
                                 judgement: _Judgement) -> bool:
    """Step 5 before the guard: the policy, the model and the screen all agree, and nothing raised the level."""
    auto_rule = policy.auto_approve
    return bool(
        decision.auto_approve_eligible
        and llm_result.status == "ok"
        and llm_result.assessment is not None
        and llm_result.assessment.auto_approve_ok
        and not judgement.injection
        and auto_rule is not None
        and risk_rank(judgement.risk) <= risk_rank(auto_rule.max_risk)
        and judgement.level == decision.approver_level
    )


def _apply_holds(screening: Screening, judgement: _Judgement) -> None:
    """A hold (text about its own review, or data to decode) leaves the decision to a person."""
    if judgement.auto and screening.held:
        judgement.auto = False
        where = ", ".join(f"{name} in {field_name}" for field_name, names in screening.holds.items() for name in names)
        judgement.factors.append(f"no auto-approval: the text talks about its own review or carries data to decode ({where}); a person decides")


def _guard_step(llm: AssessmentLLM | None, guard: AssessmentLLM | None, free_text: dict[str, str],
                llm_result: _LLMResult, decision: PolicyDecision, judgement: _Judgement) -> _GuardOutcome:
    """A second, independent judgement before any auto-approval: one narrow question, its own prompt and call.
    Its cost and latency are added to the assessment's."""
    if llm is None:
        return _GuardOutcome("skipped", None, {"reason": "not asked: rules only"})
    if not judgement.auto:
        return _GuardOutcome("skipped", None, {"reason": "not asked: auto-approval was already ruled out"})
    status, verdict, guard_result = _guard(guard or llm, free_text)
    detail = {"model": guard_result.model, "calls": guard_result.calls, "error": guard_result.error,
              "cost_usd": None if guard_result.cost_usd is None else round(guard_result.cost_usd, 8),
              "latency_ms": None if guard_result.latency_ms is None else round(guard_result.latency_ms, 3)}
    llm_result.replies.extend(guard_result.replies)
    if guard_result.cost_usd is not None:
        llm_result.cost_usd = (llm_result.cost_usd or 0.0) + guard_result.cost_usd
    if guard_result.latency_ms is not None:
        llm_result.latency_ms = (llm_result.latency_ms or 0.0) + guard_result.latency_ms
    _apply_guard(status, verdict, guard_result.error, decision, judgement)
    return _GuardOutcome(status, verdict, detail)


def _apply_guard(status: str, verdict: GuardVerdict | None, error: str | None, decision: PolicyDecision,
                 judgement: _Judgement) -> None:
    """``clear`` lets the auto-approval stand; ``suspected`` escalates; any failure counts as suspected for it."""
    if status == "clear":
        judgement.factors.append("guard: the text does not address the reviewer")
    elif status == "suspected":
        judgement.auto = False
        judgement.injection = True
        judgement.escalate(decision.approver_level)
        evidence = "; ".join(verdict.evidence) if verdict else ""
        judgement.factors.append("guard: the text tries to instruct the reviewer" + (f" ({evidence})" if evidence else ""))
    else:
        judgement.auto = False
        judgement.factors.append(f"guard check {status}"
                                 + (f" ({error})" if error else "")
                                 + ": treated as suspected, no auto-approval")


def _outcome(request: ApprovalRequest, policy: Policy, decision: PolicyDecision, judgement: _Judgement,
             llm_result: _LLMResult, screening: Screening, guard: _GuardOutcome, limits_audit: dict[str, Any],
             now: datetime) -> RoutingOutcome:
    next_state = "approved" if judgement.auto else "escalated" if judgement.injection else "pending"
    deadline = None if request.deadline_hours is None else now + timedelta(hours=request.deadline_hours)
    return RoutingOutcome(
        request=request,
        policy_version=policy.version,
        decision=decision,
        approver_level=judgement.level,
        risk_level=judgement.risk,
        auto_approve=judgement.auto,
        next_state=next_state,
        llm_status=llm_result.status,
        injection_suspected=judgement.injection,
        injection_signals=screening.signal_names(),
        assessment=llm_result.assessment,
        factors=judgement.factors,
        cost_usd=None if llm_result.cost_usd is None else round(llm_result.cost_usd, 8),
        latency_ms=None if llm_result.latency_ms is None else round(llm_result.latency_ms, 3),
        sla_hours=policy.sla_for(judgement.level),
        deadline=deadline,
        decided_at=now,
        llm_calls=llm_result.calls,
        llm_model=llm_result.model,
        llm_error=llm_result.error,
        inputs_digest=request.digest(),
        policy_sha256=policy.sha256,
        guard_status=guard.status,
        guard_verdict=guard.verdict,
        guard_detail=guard.detail,
        screening=screening,
        limits=limits_audit,
    )


def _sample_and_limits(gate: AutoApprovalGate | None, policy: Policy, request: ApprovalRequest,
                       decision: PolicyDecision, now: datetime, factors: list[str]) -> tuple[bool, dict[str, Any]]:
    """The last step of a would-be auto-approval: the audit sample, then the limits (approval.limits).
    Appends its factors; returns whether the auto-approval stands and what to audit."""
    auto_rule = policy.auto_approve
    if auto_rule is None:  # unreachable: eligibility needs the section
        return False, {"result": "not_checked"}
    outcome = check(gate or AutoApprovalGate.in_process(), auto_rule, request.request_id, request.requester_id,
                    request.digest(), decision.amount_base, policy.base_currency, now)
    factors.extend(outcome.factors)
    return outcome.allowed, outcome.audit


__all__ = ["LLM_STATUSES", "ApprovalRequest", "RoutingOutcome", "route"]
