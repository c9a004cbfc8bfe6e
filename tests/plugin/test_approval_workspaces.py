"""Issue 21 through the plugin runtime: two workspaces (two API keys) on one Redis never see, change, escalate,
notify about or block each other's approval requests, and identities come from the administrator's policy
and from Dify, not from what a caller claims."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import redis

from approval.dead_letters import DeadLetterQueue
from devtools.plugin_process import PluginProcess
from gateway.state.keys import Keys
from tests.plugin.test_approval_links import claims_of, forged
from tests.plugin.test_approval_notifications import (
    ENDPOINT_URL,
    LINK_SECRET,
    REDIS_URL,
    endpoint_target,
    links_in,
    open_link,
    policy,
    route_params,
    status,
)

pytestmark = pytest.mark.redis
OTHER_LINK_SECRET = "other-workspace-link-secret-" + "z" * 8
A_TEXT = "Workspace A: replacement switches for the second floor, quote attached."
B_TEXT = "Workspace B: conference booth for the spring fair."


@pytest.fixture
def workspaces(credentials: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Workspace A (the simulator's key) and workspace B (another key) on the same Redis. The approval tools
    used here make no gateway call (rules only), so B's key needs no gateway of its own."""
    # The receiver listens on loopback over plain http: an internal target only the administrator can allow.
    a = {**credentials, "redis_url": REDIS_URL, "webhook_allowlist": "127.0.0.1"}
    b = {**credentials, "api_key": f"sk-workspace-b-{uuid.uuid4().hex}", "redis_url": REDIS_URL, "webhook_allowlist": "127.0.0.1"}
    return a, b


def refusal(outcome: Any, *request_ids: str) -> str:
    """An error message without its correlation id and with the request ids replaced: what two refusals must
    share to give nothing away."""
    assert not outcome.ok, outcome.variables
    text = re.sub(r" \[correlation_id: [^\]]*\]$", "", outcome.error_message)
    for request_id in request_ids:
        text = text.replace(request_id, "<id>")
    return text


def open_with(plugin: PluginProcess, url: str, method: str, link_secret: str):
    """A link opened at an endpoint whose settings hold ``link_secret`` (another workspace's endpoint)."""
    settings = {"link_secret": link_secret, "redis_url": REDIS_URL}
    target = endpoint_target(url)
    if method == "GET":
        return plugin.invoke_endpoint("GET", target, settings=settings)
    token = url.split("t=", 1)[1]
    return plugin.invoke_endpoint("POST", target, headers={"Content-Type": "application/x-www-form-urlencoded"},
                                  body=f"t={token}".encode(), settings=settings)


def unchanged(plugin: PluginProcess, creds: dict[str, Any], request_id: str) -> None:
    now = status(plugin, creds, request_id)
    assert (now["found"], now["state"], now["version"]) == (True, "pending", 1), now
    assert [entry["kind"] for entry in now["history"]] == ["created"]


def test_another_workspace_can_neither_read_change_escalate_notify_nor_block(plugin, workspaces, receiver) -> None:
    a, b = workspaces
    team_a = {"director": [{"id": "dana", "channel": "hook"}]}
    routed_a = route_params(policy({"hook": "generic"}, team_a), {"hook": {"url": receiver.url("/a-hook")}}, content=A_TEXT)
    request_id, never = routed_a["request_id"], f"NEVER-{uuid.uuid4().hex[:10]}"
    outcome = plugin.run_tool("approval_route", routed_a, a)
    assert outcome.ok and outcome.variables["notification_status"] == "sent", outcome.error or outcome.variables
    [link] = [links_in("generic", item)["approve"] for item in receiver.at("/a-hook")]
    assert claims_of(link)["w"] == Keys.for_api_key(a["api_key"]).scope  # the link carries its workspace

    # B's administrator names approvers and a webhook of B's own.
    b_policy = policy({"hook": "generic"}, {"director": [{"id": "dina", "channel": "hook"}], "vp": [{"id": "vic", "channel": "hook"}]})
    b = {**b, "approval_policy": b_policy}
    b_secrets = json.dumps({"link_secret": OTHER_LINK_SECRET, "channels": {"hook": {"url": receiver.url("/b-hook")}}})

    # Read: B's status of A's request is B's status of a request that never existed.
    seen, nothing = status(plugin, b, request_id), status(plugin, b, never)
    assert seen == nothing and (seen["found"], seen["store"], seen["history"]) == (False, "redis", [])
    # Change and escalate: "not found", in the words used for an id that never existed.
    attempts = [
        {"event": "approve", "actor_id": "eve", "actor_level": "executive", "expected_version": 1},
        {"event": "reject", "actor_id": "dina", "actor_level": "director", "expected_version": 1},
        {"event": "claim", "actor_id": "dina"},
        {"event": "cancel", "actor_id": "amy"},
        {"event": "escalate", "actor_id": "amy", "notification_secrets": b_secrets, "approval_endpoint_url": ENDPOINT_URL},
    ]
    for attempt in attempts:
        theirs = plugin.run_tool("approval_transition", {"request_id": request_id, **attempt}, b)
        absent = plugin.run_tool("approval_transition", {"request_id": never, **attempt}, b)
        assert refusal(theirs, request_id) == refusal(absent, never), attempt
        assert "unknown approval request" in theirs.error_message
    assert receiver.at("/b-hook") == []  # A's request text never reached B's webhook
    unchanged(plugin, a, request_id)

    # Block: B routing the same request id is B's own, independent request.
    routed_b = plugin.run_tool("approval_route", {**route_params("", {}), "request_id": request_id, "policy": "",
                                                  "content": B_TEXT, "notification_secrets": ""}, b)
    assert routed_b.ok and routed_b.variables["version"] == 1, routed_b.error
    escalated = plugin.run_tool("approval_transition", {"request_id": request_id, **attempts[-1]}, b)
    assert escalated.ok and (escalated.variables["accepted"], escalated.variables["state"]) == (True, "escalated"), escalated.variables
    told = receiver.at("/b-hook")
    assert [item.json["approver"]["id"] for item in told] == ["vic"]
    assert B_TEXT in json.dumps(told[0].json) and A_TEXT not in json.dumps(told[0].json)
    unchanged(plugin, a, request_id)

    # B's endpoint, with a link for A's request signed with B's own secret, finds nothing, as for an id that
    # never existed in B's own workspace; nothing of A's changes.
    b_scope = Keys.for_api_key(b["api_key"]).scope
    for method, code in (("GET", 409), ("POST", 404)):
        across = open_with(plugin, forged(link, secret=OTHER_LINK_SECRET, nonce=f"x-{method}"), method, OTHER_LINK_SECRET)
        missing = open_with(plugin, forged(link, secret=OTHER_LINK_SECRET, nonce=f"m-{method}", request_id=never, scope=b_scope),
                            method, OTHER_LINK_SECRET)
        assert across.status == missing.status == code
        assert "No approval request" in across.text
        assert across.text.replace(request_id, "<id>").replace(a_scope_of(a), "") == missing.text.replace(never, "<id>").replace(b_scope, "")
    unchanged(plugin, a, request_id)

    # A's own link, at A's endpoint, still decides A's request, and only it.
    assert open_link(plugin, link, "POST").status == 200
    assert status(plugin, a, request_id)["state"] == "approved"
    assert (status(plugin, b, request_id)["state"], status(plugin, b, request_id)["version"]) == ("escalated", 2)


def a_scope_of(creds: dict[str, Any]) -> str:
    return Keys.for_api_key(creds["api_key"]).scope


def test_another_workspace_cannot_list_drop_or_replay_dead_letters(plugin, workspaces) -> None:
    a, b = workspaces
    dlq = DeadLetterQueue(redis.Redis.from_url(REDIS_URL), Keys.for_api_key(a["api_key"]))
    entry_id = dlq.add("notification", "webhook answered HTTP 500 (test)", {"channel": "hook", "request": {"request_id": "DL-1"}})
    try:
        listed = plugin.run_tool("approval_dead_letters", {"action": "list"}, b)
        assert listed.ok and entry_id not in [entry["id"] for entry in listed.variables["entries"]]
        dropped = plugin.run_tool("approval_dead_letters", {"action": "drop", "entry_id": entry_id}, b)
        assert dropped.ok and dropped.variables["status"] == "not_found"
        replayed = plugin.run_tool("approval_dead_letters", {"action": "replay", "entry_id": entry_id}, b)
        assert not replayed.ok and f"no dead letter {entry_id}" in replayed.error_message
        own = plugin.run_tool("approval_dead_letters", {"action": "list"}, a)
        assert entry_id in [entry["id"] for entry in own.variables["entries"]]
    finally:
        dlq.drop(entry_id)


# ----------------------------------------------------------------------------- identities


TEAM = {"manager": [{"id": "max"}], "director": [{"id": "dana"}]}


def routed_to_a_director(plugin: PluginProcess, creds: dict[str, Any]) -> str:
    params = {**route_params("", {}), "policy": "", "notification_secrets": "", "approval_endpoint_url": ""}
    outcome = plugin.run_tool("approval_route", params, creds)
    assert outcome.ok, outcome.error
    assert (outcome.variables["approver_level"], outcome.variables["policy_source"]) == ("director", "credential")
    return params["request_id"]


def test_levels_are_the_policys_when_it_names_approvers(plugin, workspaces) -> None:
    a, _ = workspaces
    creds = {**a, "approval_policy": policy({}, TEAM)}
    request_id = routed_to_a_director(plugin, creds)
    decide = {"request_id": request_id, "event": "approve", "expected_version": 1}
    manager = plugin.run_tool("approval_transition", {**decide, "actor_id": "max", "actor_level": "vp"}, creds)
    assert manager.ok and (manager.variables["accepted"], manager.variables["code"]) == (False, "level_not_granted")
    assert "claims level vp, but the administrator's policy names them as manager" in manager.variables["reason"]
    stranger = plugin.run_tool("approval_transition", {**decide, "actor_id": "eve", "actor_level": "executive"}, creds)
    assert stranger.ok and (stranger.variables["accepted"], stranger.variables["code"]) == (False, "not_an_approver")
    claim = plugin.run_tool("approval_transition", {**decide, "event": "claim", "actor_id": "eve", "actor_level": "executive"}, creds)
    assert claim.variables["code"] == "not_an_approver"
    cancel = plugin.run_tool("approval_transition", {**decide, "event": "cancel", "actor_id": "eve"}, creds)
    assert cancel.variables["code"] == "not_an_approver"
    assert (status(plugin, creds, request_id)["state"], status(plugin, creds, request_id)["version"]) == ("pending", 1)
    director = plugin.run_tool("approval_transition", {**decide, "actor_id": "dana"}, creds)  # no level: the policy's
    assert director.ok and (director.variables["accepted"], director.variables["state"]) == (True, "approved"), director.variables
    history = status(plugin, creds, request_id)["history"]
    assert (history[-1]["actor_id"], history[-1]["actor_level"]) == ("dana", "director")


def test_approval_actor_dify_user_acts_as_the_runs_user_mapped_through_dify_users(plugin, workspaces) -> None:
    a, _ = workspaces
    text = policy({}, TEAM).replace("approvers:", "dify_users: {u-dana-1: dana, u-amy-1: amy}\napprovers:", 1)
    creds = {**a, "approval_policy": text, "approval_actor": "dify_user"}
    request_id = routed_to_a_director(plugin, creds)
    decide = {"request_id": request_id, "event": "approve", "expected_version": 1, "actor_id": "dana", "actor_level": "director"}
    # The actor_id parameter does not speak for anyone: the run's user does.
    as_requester = plugin.run_tool("approval_transition", decide, creds, user_id="u-amy-1")
    assert as_requester.ok and (as_requester.variables["code"], as_requester.variables["actor_id"]) == ("self_approval", "amy")
    unmapped = plugin.run_tool("approval_transition", decide, creds, user_id="u-someone-9")
    assert (unmapped.variables["code"], unmapped.variables["actor_id"]) == ("not_an_approver", "u-someone-9")
    nobody = plugin.run_tool("approval_transition", decide, creds, user_id="")
    assert not nobody.ok and "approval_actor is dify_user, but Dify sent no user for this run" in nobody.error_message
    dana = plugin.run_tool("approval_transition", {**decide, "actor_id": ""}, creds, user_id="u-dana-1")
    assert dana.ok and (dana.variables["accepted"], dana.variables["actor_id"]) == (True, "dana"), dana.variables
    wrong = plugin.run_tool("approval_transition", decide, {**creds, "approval_actor": "somebody"}, user_id="u-dana-1")
    assert not wrong.ok and "approval_actor must be one of parameter, dify_user" in wrong.error_message


@pytest.mark.parametrize(
    "actor", ["ALIC\u0395", "\u0391LIC\u0395", "\u03b1lic\u03b5", "alice\u2800"],
    ids=["greek-capital-epsilon", "greek-capitals", "greek-small", "braille-blank"],
)
def test_look_alikes_of_the_requester_are_refused_as_self_approval_with_named_approvers(plugin, workspaces, actor: str) -> None:
    """With the policy's approvers, a look-alike of a named approver who is also the requester is that person."""
    a, _ = workspaces
    creds = {**a, "approval_policy": policy({}, {"director": [{"id": "alice"}]})}
    params = {**route_params("", {}), "policy": "", "notification_secrets": "", "approval_endpoint_url": "", "requester_id": "alice"}
    assert plugin.run_tool("approval_route", params, creds).ok
    out = plugin.run_tool("approval_transition", {"request_id": params["request_id"], "event": "approve", "expected_version": 1,
                                                  "actor_id": actor}, creds)
    assert out.ok and (out.variables["accepted"], out.variables["code"]) == (False, "self_approval"), out.variables
    assert LINK_SECRET not in json.dumps(out.messages)
