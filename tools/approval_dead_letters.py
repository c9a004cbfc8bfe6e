import time
from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from approval.dead_letters import DeadLetterQueue, check_entry_id
from approval.records import StoreUnavailable
from approval.store_choice import REDIS, store_for
from gateway.errors import FieldError, register_secret
from specs.params import choice_param, number_param, text_param
from tools.approval_notify import webhook_post
from tools.outputs import variable_messages
from tools.reporting import HolySheepToolError, ToolInputError, reported_errors
from tools.support import gateway_config

ACTIONS = ("list", "replay", "drop")
KINDS = ("all", "notification", "decision")


class ApprovalDeadLettersTool(Tool):
    """The dead-letter queue of approval notifications and link decisions (approval.dead_letters)."""

    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        params = tool_parameters
        action = choice_param(params, "action", ACTIONS, default="list")
        chosen = None
        config = gateway_config(self.runtime.credentials)
        try:
            chosen = store_for(config.redis_url, keys=config.keys)
        except ValueError as exc:
            raise ToolInputError(f"provider credentials: {exc}") from None
        if chosen.name != REDIS:
            raise ToolInputError(
                "the dead-letter queue lives in Redis: set redis_url in the provider credentials (the same Redis as the "
                "approval store)"
            )
        store = chosen.store
        dlq = DeadLetterQueue(store.client, store.keys)  # type: ignore[attr-defined]
        output: dict[str, Any] = {"action": action}
        try:
            if action == "list":
                kind = choice_param(params, "kind", KINDS, default="all")
                limit = number_param(params, "limit", default=50, minimum=1, maximum=500, integer=True)
                entries = dlq.list(limit, "" if kind == "all" else kind)
                output.update(entries=[entry.to_output() for entry in entries], count=len(entries), total=dlq.count())
            else:
                entry_id = entry_id_param(params)
                output["entry_id"] = entry_id
                if action == "drop":
                    output["status"] = "dropped" if dlq.drop(entry_id) else "not_found"
                    output["reason"] = "removed from the queue" if output["status"] == "dropped" else "no entry with this id"
                else:
                    output.update(replay(dlq, store, entry_id, params, post=webhook_post(self.runtime.credentials)))
                output["total"] = dlq.count()
        except StoreUnavailable as exc:
            raise HolySheepToolError(str(exc)) from None
        yield self.create_json_message(output)
        yield from variable_messages(self, output)


def entry_id_param(params: dict[str, Any]) -> str:
    raw = text_param(params, "entry_id", max_chars=64).strip()
    if not raw:
        raise ToolInputError("'entry_id' is required to replay or drop: take it from the list action")
    try:
        return check_entry_id(raw)
    except ValueError as exc:
        raise ToolInputError(f"'entry_id': {str(exc).removeprefix('entry_id: ')}") from None


def replay(dlq: DeadLetterQueue, store: Any, entry_id: str, params: dict[str, Any], post: Any = None) -> dict[str, Any]:
    """Replay once: the claim (SET NX) keeps two replays from both sending; a success is recorded and the
    entry deleted, so the next replay reports it instead of sending again."""
    from approval.decisions import UNAVAILABLE, LinkSecrets, apply_link_decision
    from approval.links import LinkClaims
    from approval.notifications import replay_notification
    from gateway.wire.webhooks import post_json
    from specs.approval_specs import notification_settings

    entry = dlq.get(entry_id)
    if entry is None:
        earlier = dlq.claim_replay(entry_id)
        if earlier is None:  # nothing was there to replay: do not keep the claim
            dlq.release_replay(entry_id)
            raise ToolInputError(f"'entry_id': no dead letter {entry_id} (dropped, or never there); list shows the entries")
        return replay_known(earlier)
    if entry.kind == "notification":
        try:
            secrets, endpoint_url = notification_settings(params)
        except FieldError:
            raise
        for value in secrets.values():
            register_secret(value)
    earlier = dlq.claim_replay(entry_id)
    if earlier is not None:
        return replay_known(earlier)
    try:
        if entry.kind == "notification":
            try:
                if entry.payload.get("link") and secrets.link_secret:  # the endpoint honours links of secrets the workspace used
                    LinkSecrets(store.client, store.keys).remember(secrets.link_secret)
                result = replay_notification(entry.payload, secrets, endpoint_url, post=post or post_json, scope=store.keys.scope)
            except ValueError as exc:
                dlq.release_replay(entry_id)
                raise ToolInputError(str(exc)) from None
            if result.delivered:
                dlq.finish_replay(entry_id, {"status": "delivered", "attempts": result.attempts})
                return {"status": "delivered", "reason": "delivered", "attempts": result.attempts}
            dlq.release_replay(entry_id)
            return {"status": "failed", "reason": f"{result.reason}; the entry stays in the queue", "attempts": result.attempts}
        claims = LinkClaims.from_dict(entry.payload["link"])
        outcome = apply_link_decision(store, claims, now=time.time(), dlq=None)
        if outcome.status == UNAVAILABLE:
            dlq.release_replay(entry_id)
            return {"status": "failed", "reason": f"{outcome.message} The entry stays in the queue."}
        dlq.finish_replay(entry_id, {"status": outcome.status, "reason": outcome.message})
        return {"status": outcome.status, "reason": outcome.message}
    except StoreUnavailable:
        raise
    except ToolInputError:
        raise
    except Exception:
        dlq.release_replay(entry_id)
        raise


def replay_known(earlier: dict[str, Any]) -> dict[str, Any]:
    if earlier.get("state") == "done":
        first = str(earlier.get("status", ""))
        return {"status": "already_replayed", "reason": f"replayed before ({first}); nothing was sent or applied again"}
    return {"status": "in_progress", "reason": "another replay of this entry is running; nothing was done"}
