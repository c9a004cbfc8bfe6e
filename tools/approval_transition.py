import json
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from approval.levels import APPROVER_LEVELS, EVENTS, STATES
from approval.store import StoreUnavailable, UnknownRequest, store_for, validate_idempotency_key, validate_request_id
from approval.transitions import ApprovalRecord, TransitionResult, apply_transition, parse_instant
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


class ApprovalTransitionTool(Tool):
    """Applies one event to an approval request.

    With `redis_url` configured the record lives in the Redis approval store (atomic compare-and-set,
    idempotency keys, history) and only request_id, expected_version, event and the actor are read
    from the caller. Otherwise the workflow carries the record in variables; `persist` keeps it in Dify
    plugin storage, which has no compare-and-set: two concurrent writers can lose an update.
    """

    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        try:
            request_id = validate_request_id(text_param(tool_parameters, "request_id", required=True).strip())
            idempotency_key = validate_idempotency_key(text_param(tool_parameters, "idempotency_key").strip() or None)
        except ValueError as exc:
            raise ToolInputError(str(exc)) from None
        event = choice_param(tool_parameters, "event", EVENTS, default="")
        actor_id = text_param(tool_parameters, "actor_id", required=True, max_chars=200).strip()
        actor_level = choice_param(tool_parameters, "actor_level", APPROVER_LEVELS, default="")
        expected = number_param(tool_parameters, "expected_version", default=None, minimum=1, integer=True, allow_none=True)
        now = self._instant(tool_parameters, "now") or datetime.now(UTC)
        store = store_for(gateway_config(self.runtime.credentials).redis_url)
        if store is not None:
            try:
                result = store.transition(
                    request_id, event=event, actor_id=actor_id, actor_level=actor_level,
                    expected_version=expected, now=now, idempotency_key=idempotency_key,
                )
            except UnknownRequest as exc:
                raise ToolInputError(str(exc)) from None
            except StoreUnavailable as exc:
                raise HolySheepToolError(str(exc)) from None
            yield from self._emit(result, "redis")
            return
        persist = bool_param(tool_parameters, "persist")
        storage_key = f"{STORAGE_PREFIX}{request_id}"
        if persist and idempotency_key:
            replay = self._load(f"{storage_key}:idem:{idempotency_key}")
            if replay is not None:
                yield from self._emit(TransitionResult.from_dict(replay), "dify_storage")
                return
        stored = self._load(storage_key) if persist else None
        record = ApprovalRecord.from_dict(stored) if stored is not None else self._record_from_parameters(request_id, tool_parameters)
        result = apply_transition(record, event=event, actor_id=actor_id, actor_level=actor_level, expected_version=expected, now=now)
        if persist:
            if result.version != record.version:  # accepted, or the request expired
                self.session.storage.set(storage_key, json.dumps(record.advanced(result).to_dict()).encode())
            if idempotency_key:
                self.session.storage.set(f"{storage_key}:idem:{idempotency_key}", json.dumps(result.to_dict()).encode())
        yield from self._emit(result, "dify_storage" if persist else "none")

    def _record_from_parameters(self, request_id: str, params: dict[str, Any]) -> ApprovalRecord:
        try:
            return ApprovalRecord(
                request_id=request_id,
                state=choice_param(params, "state", STATES, default="pending"),
                version=number_param(params, "version", default=1, minimum=1, integer=True),
                required_level=choice_param(params, "required_level", APPROVER_LEVELS, default="manager"),
                requester_id=text_param(params, "requester_id", required=True, max_chars=200).strip(),
                deadline=self._instant(params, "deadline"),
            )
        except ValueError as exc:
            raise ToolInputError(str(exc)) from None

    @staticmethod
    def _instant(params: dict[str, Any], name: str) -> datetime | None:
        text = text_param(params, name, max_chars=64).strip()
        if not text:
            return None
        try:
            return parse_instant(text, name)
        except ValueError as exc:
            raise ToolInputError(str(exc)) from None

    def _load(self, key: str) -> dict[str, Any] | None:
        if not self.session.storage.exist(key):
            return None
        return json.loads(self.session.storage.get(key))

    def _emit(self, result: TransitionResult, store: str) -> Generator[ToolInvokeMessage, None, None]:
        output = {**result.to_outputs(), "code": result.code, "required_level": result.required_level, "store": store}
        yield self.create_json_message(output)
        for name, value in output.items():
            yield self.create_variable_message(name, value)
