import hashlib
import json
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from approval.levels import APPROVER_LEVELS, EVENTS, STATES
from approval.store import (
    StoreUnavailable,
    UnknownRequest,
    check_idempotent_replay,
    store_for,
    validate_idempotency_key,
    validate_request_id,
)
from approval.transitions import LEVEL_GATED_EVENTS, ApprovalRecord, TransitionResult, apply_transition, parse_instant
from tools.support import (
    HolySheepToolError,
    ToolInputError,
    bool_param,
    choice_param,
    gateway_config,
    number_param,
    reported_errors,
    text_param,
)

STORAGE_PREFIX = "holysheep:approval:"
# Events that decide a request: with the Redis store they must say which version the actor read.
DECIDING_EVENTS = ("approve", "reject")


def storage_key(request_id: str) -> str:
    """Dify plugin storage key of a persisted record."""
    return f"{STORAGE_PREFIX}{request_id}"


def idempotency_storage_key(request_id: str, idempotency_key: str) -> str:
    """Dify plugin storage key of the first outcome for an idempotency key: the key itself is hashed
    (sha256, as in the Redis store), so its length and characters never reach the storage key."""
    return f"{storage_key(request_id)}:idem:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"


class ApprovalTransitionTool(Tool):
    """Applies one event to an approval request.

    With `redis_url` configured the record lives in the Redis approval store (atomic compare-and-set,
    idempotency keys, history, the server's clock) and only request_id, expected_version (required to
    approve or reject), event and the actor are read from the caller. Otherwise the workflow carries the
    record in variables (state and required_level are then required); `persist` keeps it in Dify plugin
    storage, which has no compare-and-set: two concurrent writers can lose an update.
    """

    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        try:
            request_id = validate_request_id(text_param(tool_parameters, "request_id", required=True).strip())
            idempotency_key = validate_idempotency_key(text_param(tool_parameters, "idempotency_key").strip() or None)
        except ValueError as exc:
            raise ToolInputError(_named(exc)) from None
        if not str(tool_parameters.get("event") or "").strip():
            raise ToolInputError(f"'event' is required: one of {', '.join(EVENTS)}")
        event = choice_param(tool_parameters, "event", EVENTS, default="")
        actor_id = text_param(tool_parameters, "actor_id", required=True, max_chars=200).strip()
        actor_level = actor_level_param(tool_parameters, event)
        expected = number_param(tool_parameters, "expected_version", default=None, minimum=1, integer=True, allow_none=True)
        now_given = bool(text_param(tool_parameters, "now", max_chars=64).strip())
        store = store_for(gateway_config(self.runtime.credentials).redis_url)
        if store is not None:
            if now_given:
                raise ToolInputError(
                    "'now' is only for workflows that carry state; the approval store uses the server clock. "
                    "Leave 'now' empty"
                )
            if event in DECIDING_EVENTS and expected is None:
                raise ToolInputError(
                    f"'expected_version' is required to {event} with the approval store: the approval store needs "
                    "the version you read, so a concurrent decision cannot be overwritten. Pass the version from "
                    "approval_route or from the last approval_transition"
                )
            try:
                result = store.transition(
                    request_id, event=event, actor_id=actor_id, actor_level=actor_level,
                    expected_version=expected, idempotency_key=idempotency_key,
                )
            except UnknownRequest as exc:
                raise ToolInputError(str(exc)) from None
            except StoreUnavailable as exc:
                raise HolySheepToolError(str(exc)) from None
            except ValueError as exc:  # an idempotency key reused for another event or actor
                raise ToolInputError(_named(exc)) from None
            yield from self._emit(result, "redis")
            return
        now = self._instant(tool_parameters, "now") or datetime.now(UTC)
        persist = bool_param(tool_parameters, "persist")
        if idempotency_key and not persist:
            raise ToolInputError(
                "'idempotency_key' needs persist=true or the Redis approval store (redis_url): without a store "
                "nothing remembers the first result, so a retry would apply again. Set persist or leave the key empty"
            )
        key = storage_key(request_id)
        idem_key = idempotency_storage_key(request_id, idempotency_key) if idempotency_key else None
        if idem_key is not None:
            replay = self._load(idem_key)
            if replay is not None:
                try:
                    first = check_idempotent_replay(TransitionResult.from_dict(replay), event=event, actor_id=actor_id)
                except ValueError as exc:
                    raise ToolInputError(_named(exc)) from None
                yield from self._emit(first, "dify_storage")
                return
        stored = self._load(key) if persist else None
        if stored is not None and now_given:
            raise ToolInputError(
                "'now' is only for workflows that carry state: this request is stored (persist), and its deadline "
                "is checked against the current time. Leave 'now' empty"
            )
        record = ApprovalRecord.from_dict(stored) if stored is not None else self._record_from_parameters(request_id, tool_parameters)
        result = apply_transition(record, event=event, actor_id=actor_id, actor_level=actor_level, expected_version=expected, now=now)
        if persist:
            if result.version != record.version:  # accepted, or the request expired
                self.session.storage.set(key, json.dumps(record.advanced(result).to_dict()).encode())
            if idem_key is not None:
                self.session.storage.set(idem_key, json.dumps(result.to_dict()).encode())
        yield from self._emit(result, "dify_storage" if persist else "none")

    def _record_from_parameters(self, request_id: str, params: dict[str, Any]) -> ApprovalRecord:
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
        try:
            return ApprovalRecord(
                request_id=request_id,
                state=state,
                version=number_param(params, "version", default=1, minimum=1, integer=True),
                required_level=required_level,
                requester_id=required_text(params, "requester_id", "who asked for the approval, so self-approval can be refused"),
                deadline=self._instant(params, "deadline"),
            )
        except ValueError as exc:
            raise ToolInputError(_named(exc)) from None

    @staticmethod
    def _instant(params: dict[str, Any], name: str) -> datetime | None:
        text = text_param(params, name, max_chars=64).strip()
        if not text:
            return None
        try:
            return parse_instant(text, name)
        except ValueError as exc:
            raise ToolInputError(_named(exc)) from None

    def _load(self, key: str) -> dict[str, Any] | None:
        if not self.session.storage.exist(key):
            return None
        return json.loads(self.session.storage.get(key))

    def _emit(self, result: TransitionResult, store: str) -> Generator[ToolInvokeMessage, None, None]:
        output = {**result.to_outputs(), "code": result.code, "required_level": result.required_level, "store": store}
        yield self.create_json_message(output)
        for name, value in output.items():
            yield self.create_variable_message(name, value)


def actor_level_param(params: dict[str, Any], event: str) -> str | None:
    """The actor's level; None when empty, which only escalate and cancel allow."""
    if not str(params.get("actor_level") or "").strip():
        if event in LEVEL_GATED_EVENTS:
            raise ToolInputError(
                f"'actor_level' is required to {event}: give the actor's approver level "
                f"({', '.join(APPROVER_LEVELS)}); only escalate and cancel may leave it empty"
            )
        return None
    return choice_param(params, "actor_level", APPROVER_LEVELS, default="")


def required_choice(params: dict[str, Any], name: str, choices: tuple[str, ...], what: str) -> str:
    required_text(params, name, what)
    return choice_param(params, name, choices, default="")


def required_text(params: dict[str, Any], name: str, what: str) -> str:
    """A parameter the workflow must carry when no store holds the request."""
    if not str(params.get(name) or "").strip():
        raise ToolInputError(
            f"'{name}' is required when no approval store holds the request (no redis_url, and nothing "
            f"persisted for this request_id yet): pass {what}"
        )
    return text_param(params, name, max_chars=200).strip()


def _named(exc: ValueError) -> str:
    """A ValueError from approval/ ("field: what is wrong") with the parameter quoted, as tools name them."""
    text = str(exc)
    name, sep, rest = text.partition(": ")
    if sep and name.isidentifier():
        return f"'{name}': {rest}"
    return text
