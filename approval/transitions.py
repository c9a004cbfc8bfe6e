"""The approval state machine: a pure function from (record, event, actor, time) to an outcome.

No I/O and no clock: the caller passes ``now``. Every refusal is an outcome (``accepted`` false with a
reason a person can act on), never an exception; only malformed inputs (an unknown event, state or level,
a non-integer version, an unparsable instant) raise ``ValueError`` naming the offending parameter.

Checks, in this order (the first that applies decides):

1. stale version: ``expected_version`` is given and differs from the record's version;
2. terminal state: approved, rejected, expired and cancelled accept nothing;
3. deadline passed (``now > deadline``): the request becomes **expired**. The outcome is still a refusal
   (``accepted`` false) but it carries ``state = "expired"`` and ``version + 1``: the expiry is a real
   change that the caller (the workflow variables, or a store) records;
4. illegal transition for the current state (see ``TRANSITIONS``);
5. the requester approving their own request (cancelling or escalating it is allowed);
6. identity, when the administrator's policy names approvers (``authority``): claim, approve and reject
   need a person the policy names (``not_an_approver``), at the level the policy gives them: a claimed
   higher level is refused (``level_not_granted``), and an empty or lower claim is read as the policy's
   level. Escalate and cancel stay open to the requester and to anyone the policy names; others are
   ``not_an_approver``. Without an authority, levels are what the caller says;
7. actor level below the required level for approve, reject and claim (escalate and cancel need no level:
   their ``actor_level`` may be None or ""; for claim, approve and reject a missing level is a ValueError
   unless the authority gives one);
8. otherwise accepted: the new state, ``version + 1``, reason ``"ok"``. Escalate also raises the required
   level by one step (capped at executive); every outcome carries the required level after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from approval.confusables import person_keys
from approval.levels import APPROVER_LEVELS, EVENTS, STATES, TERMINAL_STATES, level_rank
from untrusted import quote

TRANSITIONS: dict[tuple[str, str], str] = {
    ("pending", "claim"): "under_review",
    ("pending", "approve"): "approved",
    ("pending", "reject"): "rejected",
    ("pending", "escalate"): "escalated",
    ("pending", "cancel"): "cancelled",
    ("under_review", "approve"): "approved",
    ("under_review", "reject"): "rejected",
    ("under_review", "escalate"): "escalated",
    ("under_review", "cancel"): "cancelled",
    ("escalated", "claim"): "under_review",
    ("escalated", "approve"): "approved",
    ("escalated", "reject"): "rejected",
    ("escalated", "cancel"): "cancelled",
}

LEVEL_GATED_EVENTS: frozenset[str] = frozenset({"claim", "approve", "reject"})

# Machine-readable refusal codes (TransitionResult.code).
OK = "ok"
STALE_VERSION = "stale_version"
TERMINAL = "terminal"
EXPIRED = "expired"
ILLEGAL = "illegal_transition"
SELF_APPROVAL = "self_approval"
LEVEL_TOO_LOW = "level_too_low"
CONTENTION = "contention"  # a store gave up after the record changed under it too many times
NOT_AN_APPROVER = "not_an_approver"  # the policy names approvers, and not this person
LEVEL_NOT_GRANTED = "level_not_granted"  # a level above the one the policy gives this person
CODES: tuple[str, ...] = (
    OK, STALE_VERSION, TERMINAL, EXPIRED, ILLEGAL, SELF_APPROVAL, LEVEL_TOO_LOW, CONTENTION, NOT_AN_APPROVER,
    LEVEL_NOT_GRANTED,
)


class Authority(Protocol):
    """The administrator's policy on identities (``approval.approvers.Authority``)."""

    def level_of(self, actor_id: str) -> str | None: ...


def allowed_events(state: str) -> tuple[str, ...]:
    """The events that a request in ``state`` accepts, in EVENTS order (empty for terminal states)."""
    _check_choice(state, STATES, "state")
    return tuple(event for event in EVENTS if (state, event) in TRANSITIONS)


def transition_table_markdown() -> str:
    """The transition table as a markdown table (one row per state, one column per event)."""
    lines = ["| state | " + " | ".join(EVENTS) + " |", "|" + "---|" * (len(EVENTS) + 1)]
    for state in STATES:
        label = f"`{state}` (terminal)" if state in TERMINAL_STATES else f"`{state}`"
        cells = [
            f"`{TRANSITIONS[(state, event)]}`" if (state, event) in TRANSITIONS else "—" for event in EVENTS
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- instants

MAX_INSTANT_CHARS = 64


def parse_instant(text: str, field: str) -> datetime:
    """Parse an ISO 8601 instant (``Z`` or an offset; a naive value is taken as UTC) to an aware UTC datetime.

    Raises ValueError naming ``field`` when the text is empty, not ISO 8601, or an instant at the calendar's
    edge whose offset moves it outside years 1 to 9999 in UTC (``9999-12-31T23:59:59-14:00``).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"{field}: expected an ISO 8601 date-time such as 2025-01-31T17:00:00Z, got {quote(text)}"
        )
    raw = text.strip()
    if len(raw) > MAX_INSTANT_CHARS:
        raise ValueError(f"{field}: {quote(text)} is too long for an ISO 8601 date-time")
    if raw.endswith(("z", "Z")):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"{field}: {quote(text)} is not an ISO 8601 date-time (use e.g. 2025-01-31T17:00:00Z or "
            "2025-01-31T18:00:00+01:00)"
        ) from None
    try:
        return as_utc(value)
    except OverflowError:
        raise ValueError(
            f"{field}: {quote(text)} is outside the calendar once its offset is applied (years 1 to 9999 in UTC)"
        ) from None


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix."""
    return as_utc(value).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- records and results


@dataclass(frozen=True)
class ApprovalRecord:
    """What the machine needs to know about one request. Validated on construction (ValueError)."""

    request_id: str
    state: str
    version: int
    required_level: str
    requester_id: str
    deadline: datetime | None = None
    history: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.request_id, str) or not self.request_id.strip():
            raise ValueError("request_id: must be a non-empty string")
        _check_choice(self.state, STATES, "state")
        _check_version(self.version, "version")
        _check_choice(self.required_level, APPROVER_LEVELS, "required_level")
        if not isinstance(self.requester_id, str) or not self.requester_id.strip():
            raise ValueError("requester_id: must be a non-empty string (needed to refuse self-approval)")
        if self.deadline is not None:
            if not isinstance(self.deadline, datetime):
                raise ValueError(f"deadline: expected a datetime or None, got {type(self.deadline).__name__}")
            object.__setattr__(self, "deadline", as_utc(self.deadline))
        object.__setattr__(self, "history", tuple(self.history))

    def advanced(self, result: TransitionResult) -> ApprovalRecord:
        """The record after ``result``: its state, version and required level, plus one history entry."""
        return replace(
            self,
            state=result.state,
            version=result.version,
            required_level=result.required_level,
            history=(*self.history, result.to_dict()),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the history, which stores keep separately)."""
        return {
            "request_id": self.request_id,
            "state": self.state,
            "version": self.version,
            "required_level": self.required_level,
            "requester_id": self.requester_id,
            "deadline": format_instant(self.deadline) if self.deadline is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApprovalRecord:
        deadline = data.get("deadline")
        return cls(
            request_id=data["request_id"],
            state=data["state"],
            version=data["version"],
            required_level=data["required_level"],
            requester_id=data["requester_id"],
            deadline=parse_instant(deadline, "deadline") if deadline else None,
        )


@dataclass(frozen=True)
class TransitionResult:
    """The outcome of one attempted transition; ``state``, ``version`` and ``required_level`` are after it."""

    accepted: bool
    state: str
    version: int
    reason: str
    event: str
    actor_id: str
    at: str
    required_level: str
    code: str = OK
    request_id: str = ""

    def to_outputs(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "state": self.state,
            "version": self.version,
            "reason": self.reason,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "state": self.state,
            "version": self.version,
            "reason": self.reason,
            "event": self.event,
            "actor_id": self.actor_id,
            "at": self.at,
            "required_level": self.required_level,
            "code": self.code,
            "request_id": self.request_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransitionResult:
        return cls(
            accepted=bool(data["accepted"]),
            state=str(data["state"]),
            version=int(data["version"]),
            reason=str(data["reason"]),
            event=str(data["event"]),
            actor_id=str(data["actor_id"]),
            at=str(data["at"]),
            required_level=str(data["required_level"]),
            code=str(data.get("code", OK)),
            request_id=str(data.get("request_id", "")),
        )


# --------------------------------------------------------------------------- the machine


def apply_transition(
    record: ApprovalRecord,
    *,
    event: str,
    actor_id: str,
    actor_level: str | None,
    expected_version: int | None = None,
    now: datetime,
    authority: Authority | None = None,
) -> TransitionResult:
    """Decide what ``event`` by ``actor_id`` (at ``actor_level``) does to ``record`` at ``now``.

    ``actor_level`` may be None or "" for escalate and cancel (they need no level); claim, approve and
    reject need one (ValueError naming ``actor_level`` otherwise), unless ``authority`` (the policy's
    approvers) gives it.
    Pure: ``record`` is not changed; use ``record.advanced(result)`` when ``result.version`` moved.
    """
    if not isinstance(record, ApprovalRecord):
        raise ValueError(f"record: expected an ApprovalRecord, got {type(record).__name__}")
    _check_choice(event, EVENTS, "event")
    actor_level = normalize_actor_level(actor_level, event, level_from_policy=authority is not None)
    if not isinstance(actor_id, str) or not actor_id.strip():
        raise ValueError("actor_id: must be a non-empty string")
    if expected_version is not None:
        _check_version(expected_version, "expected_version")
    if not isinstance(now, datetime):
        raise ValueError(f"now: expected a datetime, got {type(now).__name__}")
    now = as_utc(now)
    attempt = _Attempt(record, event, actor_id, actor_level, expected_version, now, format_instant(now), authority)
    for check in _CHECKS:  # the module docstring's order: the first that refuses decides
        refusal = check(attempt)
        if refusal is not None:
            return refusal
    return _accepted(attempt)


@dataclass(frozen=True)
class _Attempt:
    """One event by one actor against one record at one instant, and the wording of any answer to it."""

    record: ApprovalRecord
    event: str
    actor_id: str
    actor_level: str | None
    expected_version: int | None
    now: datetime
    at: str
    authority: Authority | None

    @property
    def level(self) -> str | None:
        """The level the actor decides at: the policy's for claim, approve and reject when it names
        approvers (a lower or empty claim is read as it), else the one claimed."""
        if self.authority is not None and self.event in LEVEL_GATED_EVENTS:
            return self.authority.level_of(self.actor_id)
        return self.actor_level

    def outcome(
        self,
        code: str,
        reason: str,
        *,
        state: str | None = None,
        version: int | None = None,
        required_level: str | None = None,
    ) -> TransitionResult:
        record = self.record
        return TransitionResult(
            accepted=code == OK,
            state=record.state if state is None else state,
            version=record.version if version is None else version,
            reason=reason,
            event=self.event,
            actor_id=self.actor_id,
            at=self.at,
            required_level=record.required_level if required_level is None else required_level,
            code=code,
            request_id=record.request_id,
        )


def _stale_version(attempt: _Attempt) -> TransitionResult | None:
    record, expected = attempt.record, attempt.expected_version
    if expected is None or expected == record.version:
        return None
    return attempt.outcome(
        STALE_VERSION,
        f"stale version: expected {expected} but the request is at version {record.version} "
        f"(state {record.state}); reload and retry",
    )


def _terminal(attempt: _Attempt) -> TransitionResult | None:
    if attempt.record.state not in TERMINAL_STATES:
        return None
    return attempt.outcome(TERMINAL, f"request is already {attempt.record.state}; no further transitions")


def _deadline_passed(attempt: _Attempt) -> TransitionResult | None:
    """The request expires: a recorded change (new state and version), but not the caller's transition."""
    record = attempt.record
    if record.deadline is None or attempt.now <= record.deadline:
        return None
    return attempt.outcome(
        EXPIRED,
        f"deadline passed at {format_instant(record.deadline)}: the request expired",
        state="expired",
        version=record.version + 1,
    )


def _illegal(attempt: _Attempt) -> TransitionResult | None:
    state, event = attempt.record.state, attempt.event
    if (state, event) in TRANSITIONS:
        return None
    allowed = ", ".join(allowed_events(state)) or "nothing"
    return attempt.outcome(ILLEGAL, f"cannot {event} a request that is {state}; allowed: {allowed}")


def _self_approval(attempt: _Attempt) -> TransitionResult | None:
    if attempt.event == "approve" and _same_person(attempt.actor_id, attempt.record.requester_id):
        return attempt.outcome(SELF_APPROVAL, "the requester cannot approve their own request")
    return None


def _identity(attempt: _Attempt) -> TransitionResult | None:
    """The policy's word on who decides, at which level (only when it names approvers)."""
    if attempt.authority is None:
        return None
    actor_id, event = attempt.actor_id, attempt.event
    granted = attempt.authority.level_of(actor_id)
    if event not in LEVEL_GATED_EVENTS:
        if granted is None and not _same_person(actor_id, attempt.record.requester_id):
            return attempt.outcome(
                NOT_AN_APPROVER,
                f"{quote(actor_id)} may not {event} this request: only the requester or an approver named in the "
                "administrator's policy may",
            )
        return None
    if granted is None:
        return attempt.outcome(
            NOT_AN_APPROVER,
            f"{quote(actor_id)} is not an approver in the administrator's policy: only the people it names "
            f"under approvers may {event}",
        )
    if attempt.actor_level is not None and level_rank(attempt.actor_level) > level_rank(granted):
        return attempt.outcome(
            LEVEL_NOT_GRANTED,
            f"{quote(actor_id)} claims level {attempt.actor_level}, but the administrator's policy names them as "
            f"{granted}",
        )
    return None


def _level_too_low(attempt: _Attempt) -> TransitionResult | None:
    required = attempt.record.required_level
    if attempt.event not in LEVEL_GATED_EVENTS or level_rank(attempt.level or "") >= level_rank(required):
        return None
    return attempt.outcome(LEVEL_TOO_LOW, f"actor level {attempt.level} is below the required level {required}")


_CHECKS = (_stale_version, _terminal, _deadline_passed, _illegal, _self_approval, _identity, _level_too_low)


def _accepted(attempt: _Attempt) -> TransitionResult:
    """The new state and version; escalate also raises the required level one step (capped at executive)."""
    record = attempt.record
    required_level = record.required_level
    if attempt.event == "escalate":
        required_level = APPROVER_LEVELS[min(level_rank(required_level) + 1, len(APPROVER_LEVELS) - 1)]
    target = TRANSITIONS[(record.state, attempt.event)]
    return attempt.outcome(OK, "ok", state=target, version=record.version + 1, required_level=required_level)


# --------------------------------------------------------------------------- helpers


def normalize_actor_level(actor_level: object, event: str, *, level_from_policy: bool = False) -> str | None:
    """The actor's level, or None when none is given (allowed only for escalate and cancel, or when the
    policy gives the level: ``level_from_policy``).

    Raises ValueError naming ``actor_level`` for an unknown level, or a missing one for claim, approve
    and reject.
    """
    if actor_level is None or (isinstance(actor_level, str) and not actor_level.strip()):
        if event in LEVEL_GATED_EVENTS and not level_from_policy:
            raise ValueError(
                f"actor_level: required to {event} (one of {', '.join(APPROVER_LEVELS)}); "
                "only escalate and cancel may leave it empty"
            )
        return None
    _check_choice(actor_level, APPROVER_LEVELS, "actor_level")
    return actor_level  # type: ignore[return-value]


def recorded_level(event: str, actor_id: str, actor_level: str | None, authority: Authority | None) -> str | None:
    """The level a history entry records: the policy's for claim, approve and reject when it names the actor."""
    if authority is not None and event in LEVEL_GATED_EVENTS:
        return authority.level_of(actor_id) or actor_level or None
    return actor_level or None


def person_key(identifier: str) -> str:
    """One canonical form of a person id (case folded first, then the UTS #39 skeleton): "Alice ",
    "ALICE", "ali\u200bce", "аlice" (Cyrillic а) and "ａｌｉｃｅ" are all the same key. Comparisons use
    ``_same_person``, which also tries the other order (see ``approval.confusables.person_keys``)."""
    return min(person_keys(identifier), key=lambda key: (len(key), key)) if identifier else ""


def _same_person(a: str, b: str) -> bool:
    """Whether two identifiers name the same person: they share a folded form (NFKC, no invisible
    characters or whitespace, no combining marks on Latin/Greek/Cyrillic letters, case folded, UTS #39
    skeleton), so neither "Alice\u200b" nor "аlice" (Cyrillic а) can approve what "alice" asked."""
    return bool(person_keys(a) & person_keys(b))


def _check_choice(value: object, choices: tuple[str, ...], name: str) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: unknown value {quote(value)}; use one of {', '.join(choices)}")


def _check_version(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {quote(value)}")


__all__ = [
    "CODES",
    "CONTENTION",
    "EXPIRED",
    "ILLEGAL",
    "LEVEL_GATED_EVENTS",
    "LEVEL_NOT_GRANTED",
    "LEVEL_TOO_LOW",
    "NOT_AN_APPROVER",
    "OK",
    "SELF_APPROVAL",
    "STALE_VERSION",
    "TERMINAL",
    "TRANSITIONS",
    "ApprovalRecord",
    "Authority",
    "TransitionResult",
    "allowed_events",
    "apply_transition",
    "as_utc",
    "format_instant",
    "normalize_actor_level",
    "parse_instant",
    "person_key",
    "recorded_level",
    "transition_table_markdown",
]
