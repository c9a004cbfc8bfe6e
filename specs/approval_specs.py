"""RouteSpec (approval_route) and TransitionSpec (approval_transition): the approval tools' parameters,
parsed in one pass, with the policy that decides and the notification settings."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from approval.engine import MAX_ID_CHARS, ApprovalRequest
from approval.levels import APPROVER_LEVELS, EVENTS, STATES
from approval.records import validate_idempotency_key, validate_request_id
from approval.transitions import LEVEL_GATED_EVENTS, ApprovalRecord, parse_instant
from gateway.errors import FieldError, register_secret
from specs.input_errors import ToolInputError
from specs.model import ModelChoice, resolve_model
from specs.params import Params, bool_param, choice_param, number_param, text_param

if TYPE_CHECKING:
    from approval.policy import Policy
    from gateway.spend.pricing import PriceTable

# `model` values (case-insensitive) that mean "rules only, no LLM call".
RULES_ONLY_MODELS = frozenset({"none", "rules_only"})
# Longest text a currency, a priority, a choice, a number, a flag or an instant may be: anything longer is
# refused by its length before it is read, so no message repeats it.
SHORT_TEXT = 64
MAX_VERSION = 1_000_000_000
# The provider credential `approval_actor`: who acts is the actor_id parameter, or the Dify user running the run.
ACTOR_SOURCES = ("parameter", "dify_user")


def approval_policy(params: Params, credentials: Mapping[str, Any]) -> tuple[Policy, str]:
    """The policy that decides and where it came from: "credential", "parameter" or "bundled".

    An administrator's `approval_policy` credential cannot be replaced by a workflow's `policy` parameter.
    """
    from approval.policy import Policy, PolicyError

    parameter = str(params.get("policy") or "").strip()
    credential = str(credentials.get("approval_policy") or "").strip()
    if parameter and credential:
        raise ToolInputError(
            "'policy': the provider's approval_policy credential is set; a workflow cannot replace it. "
            "Leave 'policy' empty to use the administrator's policy, or ask the administrator to change the credential"
        )
    for source, label, text in (("credential", "approval_policy credential", credential), ("parameter", "'policy'", parameter)):
        if text:
            try:
                return Policy.load(text), source
            except PolicyError as exc:
                raise ToolInputError(f"{label}: {exc}") from None
    return Policy.bundled(), "bundled"


@functools.lru_cache(maxsize=16)  # parsed once per policy text and process, not on every transition (~14 ms at 100 approvers)
def administrators_policy(text: str) -> Policy:
    """The administrator's policy (the approval_policy credential; the bundled one without it), never a
    workflow's: it says who may decide at which level. An invalid one is refused naming the credential."""
    policy, _source = approval_policy({}, {"approval_policy": text})
    return policy


def notification_settings(params: Params) -> tuple[Any, str]:
    """The notification secrets (link secret, webhook URLs and secrets per channel) and the endpoint URL.
    Refused before anything is routed or applied when malformed; messages never repeat a secret."""
    from approval.links import check_endpoint_url
    from approval.webhook_formats import NotificationSecrets

    raw = params.get("notification_secrets")
    text = raw if isinstance(raw, str) else "" if raw is None else str(raw)
    try:
        secrets = NotificationSecrets.parse(text)
    except ValueError as exc:
        raise ToolInputError(f"'notification_secrets': {str(exc).removeprefix('notification_secrets: ')}") from None
    for value in secrets.values():
        register_secret(value)  # redacted wherever the plugin's last line of defence sees it
    url = text_param(params, "approval_endpoint_url", max_chars=2000).strip()
    if url:
        try:
            url = check_endpoint_url(url)
        except ValueError as exc:
            raise ToolInputError(f"'approval_endpoint_url': {str(exc).removeprefix('approval_endpoint_url: ')}") from None
    return secrets, url


def short_text(params: Params, name: str) -> str:
    """A parameter read as text and refused by its length alone when longer than a choice, a number, a flag
    or an instant can be, so that no message ever repeats a long value."""
    return text_param(params, name, max_chars=SHORT_TEXT)


def named(exc: ValueError) -> str:
    """A ValueError from approval/ ("field: what is wrong") with the parameter quoted, as tools name them."""
    text = str(exc)
    name, sep, rest = text.partition(": ")
    if sep and name.isidentifier():
        return f"'{name}': {rest}"
    return text


# ----------------------------------------------------------------------------- approval_route


def required_amount(params: Params) -> float:
    amount = number_param(params, "amount", default=None, minimum=0, maximum=1e15, allow_none=True)
    if amount is None:
        raise ToolInputError("'amount' is required: give the amount requested, in 'currency'")
    return amount


def approval_request(params: Params) -> ApprovalRequest:
    for name in ("amount", "deadline_hours"):  # refused by length before a message could repeat them
        short_text(params, name)
    try:
        return ApprovalRequest(
            request_id=text_param(params, "request_id", required=True, max_chars=MAX_ID_CHARS).strip(),
            content=text_param(params, "content", required=True, max_chars=100_000),
            amount=required_amount(params),
            currency=short_text(params, "currency").strip().upper() or "USD",
            request_type=text_param(params, "request_type", required=True, max_chars=MAX_ID_CHARS).strip(),
            department=text_param(params, "department", max_chars=MAX_ID_CHARS).strip(),
            requester_id=text_param(params, "requester_id", required=True, max_chars=MAX_ID_CHARS).strip(),
            priority=short_text(params, "priority").strip() or "normal",
            deadline_hours=number_param(params, "deadline_hours", default=None, minimum=0, maximum=87_600, allow_none=True),
        )
    except FieldError:  # a parameter's own message, named at the tool boundary
        raise
    except ValueError as exc:
        raise ToolInputError(str(exc)) from None


@dataclass(frozen=True)
class RouteSpec:
    """approval_route: the request, the policy that decides it, the notification settings and the models
    that assess it (`model`: empty or `default` is the provider's default, `none`/`rules_only` no LLM;
    `guard_model`: empty or `default` is the main model)."""

    request: ApprovalRequest
    policy: Policy
    policy_source: str
    secrets: Any
    endpoint_url: str
    model: str
    guard_model: str

    @classmethod
    def parse(cls, params: Params, credentials: Mapping[str, Any]) -> RouteSpec:
        policy, policy_source = approval_policy(params, credentials)
        request = approval_request(params)
        secrets, endpoint_url = notification_settings(params)
        model = text_param(params, "model", max_chars=200).strip()
        guard_model = text_param(params, "guard_model", max_chars=200).strip() if model.lower() not in RULES_ONLY_MODELS else ""
        return cls(request, policy, policy_source, secrets, endpoint_url, model, guard_model)

    @property
    def rules_only(self) -> bool:
        return self.model.lower() in RULES_ONLY_MODELS

    def models(self, *, default_model: str, prices: PriceTable) -> tuple[str, str]:
        """The assessing model and the guard's, resolved (specs.model); `auto` routes by the request's content."""
        model, _ = resolve_model(ModelChoice(self.model, free_text=True), default_model=default_model, prices=prices,
                                 prompt=self.request.content)
        guard, _ = resolve_model(ModelChoice(self.guard_model, free_text=True), default_model=model, prices=prices,
                                 prompt=self.request.content)
        return model, guard


# ----------------------------------------------------------------------------- approval_transition


def actor_param(params: Params, credentials: Mapping[str, Any], dify_user_id: object, dify_users: Mapping[str, str]) -> str:
    """Who acts. With `approval_actor: dify_user` the Dify user the run is for (the daemon's user_id), as the
    person the policy's `dify_users` maps it to (the id itself when unmapped); the actor_id parameter is then
    ignored, so nothing in the workflow can speak for someone else. Otherwise the actor_id parameter."""
    source = str(credentials.get("approval_actor") or "parameter").strip() or "parameter"
    if source not in ACTOR_SOURCES:
        raise ToolInputError(
            f"provider credentials: approval_actor must be one of {', '.join(ACTOR_SOURCES)}. Fix it in the plugin's "
            "authorization settings."
        )
    if source == "parameter":
        return text_param(params, "actor_id", required=True, max_chars=200).strip()
    user = str(dify_user_id or "").strip()
    if not user:
        raise ToolInputError(
            "provider credentials: approval_actor is dify_user, but Dify sent no user for this run; run the workflow "
            "as a signed-in user, or set approval_actor to parameter and pass actor_id"
        )
    return dify_users.get(user, user)[:200]


def actor_level_param(params: Params, event: str, *, level_from_policy: bool = False) -> str | None:
    """The actor's level; None when empty, which only escalate and cancel allow, or any event when the
    administrator's policy names approvers (the level is then the policy's)."""
    if not short_text(params, "actor_level").strip():
        if event in LEVEL_GATED_EVENTS and not level_from_policy:
            raise ToolInputError(
                f"'actor_level' is required to {event}: give the actor's approver level "
                f"({', '.join(APPROVER_LEVELS)}); only escalate and cancel may leave it empty"
            )
        return None
    return choice_param(params, "actor_level", APPROVER_LEVELS, default="")


def instant_param(params: Params, name: str) -> datetime | None:
    """An ISO 8601 instant, or None when empty. Dates at the calendar's edges whose offset would move them
    out of it are refused, naming the parameter."""
    text = short_text(params, name).strip()
    if not text:
        return None
    try:
        return parse_instant(text, name)
    except ValueError as exc:
        raise ToolInputError(named(exc)) from None


def required_text(params: Params, name: str, what: str) -> str:
    """A parameter the workflow must carry when no store holds the request."""
    if not str(params.get(name) or "").strip():
        raise ToolInputError(
            f"'{name}' is required when no approval store holds the request (no redis_url, and nothing "
            f"persisted for this request_id yet): pass {what}"
        )
    return text_param(params, name, max_chars=200).strip()


def required_choice(params: Params, name: str, choices: tuple[str, ...], what: str) -> str:
    required_text(params, name, what)
    return choice_param(params, name, choices, default="")


def record_from_parameters(request_id: str, params: Params) -> ApprovalRecord:
    """The record the workflow carries. No store holds it, so nothing may be guessed: state and
    required_level are required."""
    state = required_choice(
        params, "state", STATES,
        "the state the workflow carries (approval_route's next_state, then each transition's state)",
    )
    required_level = required_choice(
        params, "required_level", APPROVER_LEVELS,
        "approval_route's approver_level (then each transition's required_level)",
    )
    short_text(params, "version")
    try:
        return ApprovalRecord(
            request_id=request_id,
            state=state,
            version=number_param(params, "version", default=1, minimum=1, maximum=MAX_VERSION, integer=True),
            required_level=required_level,
            requester_id=required_text(params, "requester_id", "who asked for the approval, so self-approval can be refused"),
            deadline=instant_param(params, "deadline"),
        )
    except FieldError:  # a parameter's own message, named at the tool boundary
        raise
    except ValueError as exc:
        raise ToolInputError(named(exc)) from None


def transition_ids(params: Params) -> tuple[str, str | None]:
    """The request id and the idempotency key (None when empty)."""
    try:
        request_id = validate_request_id(text_param(params, "request_id", required=True, max_chars=200).strip())
        return request_id, validate_idempotency_key(text_param(params, "idempotency_key", max_chars=200).strip() or None)
    except FieldError:  # a parameter's own message, named at the tool boundary
        raise
    except ValueError as exc:
        raise ToolInputError(named(exc)) from None


@dataclass(frozen=True)
class TransitionSpec:
    """approval_transition: one event on one request, who acts and at which level, under the
    administrator's policy. The record a workflow carries (no store) is read by `carried_record`, only
    when no store holds the request; `now` is read by `now_instant`, only for a store without a clock."""

    request_id: str
    idempotency_key: str | None
    event: str
    policy: Policy
    actor_id: str
    actor_level: str | None
    expected_version: int | None
    now_given: bool
    persist: bool
    secrets: Any
    endpoint_url: str
    params: Mapping[str, Any]

    @classmethod
    def parse(cls, params: Params, credentials: Mapping[str, Any], dify_user_id: object) -> TransitionSpec:
        request_id, idempotency_key = transition_ids(params)
        if not short_text(params, "event").strip():
            raise ToolInputError(f"'event' is required: one of {', '.join(EVENTS)}")
        event = choice_param(params, "event", EVENTS, default="")
        policy = administrators_policy(str(credentials.get("approval_policy") or "").strip())
        actor_id = actor_param(params, credentials, dify_user_id, policy.dify_users)
        actor_level = actor_level_param(params, event, level_from_policy=policy.authority is not None)
        short_text(params, "expected_version")
        expected = number_param(params, "expected_version", default=None, minimum=1, maximum=MAX_VERSION, integer=True, allow_none=True)
        now_given = bool(short_text(params, "now").strip())
        short_text(params, "persist")
        persist = bool_param(params, "persist")
        secrets, endpoint_url = notification_settings(params)  # refused before anything is applied
        return cls(request_id, idempotency_key, event, policy, actor_id, actor_level, expected, now_given, persist,
                   secrets, endpoint_url, params)

    def carried_record(self, request_id: str) -> ApprovalRecord:
        return record_from_parameters(request_id, self.params)

    def now_instant(self) -> datetime | None:
        return instant_param(self.params, "now")
