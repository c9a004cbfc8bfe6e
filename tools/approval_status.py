from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from approval.levels import TERMINAL_STATES
from approval.records import StoreUnavailable, validate_request_id
from approval.store_choice import store_for
from gateway.errors import FieldError
from specs.params import bool_param, text_param
from tools.outputs import variable_messages
from tools.reporting import HolySheepToolError, ToolInputError, reported_errors
from tools.support import gateway_config


class ApprovalStatusTool(Tool):
    """Reads a stored approval request: the Redis approval store with redis_url, else Dify plugin storage
    with persist. A workflow reads here what an approver decided through a link."""

    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        try:
            request_id = validate_request_id(text_param(tool_parameters, "request_id", required=True, max_chars=200).strip())
        except FieldError:
            raise
        except ValueError as exc:
            raise ToolInputError(f"'request_id': {str(exc).removeprefix('request_id: ')}") from None
        persist = bool_param(tool_parameters, "persist")
        config = gateway_config(self.runtime.credentials)
        try:
            chosen = store_for(
                config.redis_url, keys=config.keys,
                storage=self.session.storage if persist else None,
            )
        except ValueError as exc:
            raise ToolInputError(f"provider credentials: {exc}") from None
        if not chosen.keeps_records:
            raise ToolInputError(
                "approval_status reads a stored request: set redis_url in the provider credentials (the Redis approval "
                "store, which approve / reject links use), or persist=true for records approval_transition saved in Dify storage"
            )
        try:
            record = chosen.store.get(request_id)
            history = chosen.store.history(request_id) if record is not None else []
        except StoreUnavailable as exc:
            raise HolySheepToolError(str(exc)) from None
        output: dict[str, Any] = {"found": record is not None, "store": chosen.name}
        if record is not None:
            output.update(
                state=record.state,
                version=record.version,
                required_level=record.required_level,
                requester_id=record.requester_id,
                decided=record.state in TERMINAL_STATES,
            )
            data = record.to_dict()
            if data.get("deadline"):
                output["deadline"] = data["deadline"]
            changes = [entry for entry in history if entry.get("kind") == "transition" and entry.get("accepted")]
            if changes:
                output["last_actor_id"] = str(changes[-1].get("actor_id", ""))
                output["last_event"] = str(changes[-1].get("event", ""))
            output["history"] = [{k: v for k, v in entry.items() if v is not None} for entry in history]
        yield self.create_json_message(output)
        yield from variable_messages(self, output)
