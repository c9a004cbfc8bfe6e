"""Approve / reject links through the endpoint, invoked as the daemon invokes endpoints, with the real Redis:
a valid link decides once; replayed, changed in any bound field, expired, stale (another approver decided),
or for the requester, it is refused with a clear page and changes nothing."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests

from approval.dead_letters import DeadLetterQueue
from approval.decisions import idempotency_key
from approval.links import LinkClaims, sign_link
from devtools.endpoint_server import EndpointServer
from devtools.plugin_process import PluginProcess
from gateway.state.keys import Keys
from tests.plugin.test_approval_notifications import (
    ENDPOINT_URL,
    LINK_SECRET,
    REDIS_URL,
    Receiver,
    links_in,
    open_link,
    policy,
    route_params,
    settings,
    status,
)

TEAM = {"director": [{"id": "dana", "channel": "hook"}, {"id": "dora", "channel": "hook"}],
        "manager": [{"id": "max", "channel": "hook"}]}


@pytest.fixture
def credentials(credentials: dict[str, Any]) -> dict[str, Any]:
    # The receiver listens on loopback over plain http: an internal target only the administrator can allow.
    return {**credentials, "webhook_allowlist": "127.0.0.1"}


@pytest.fixture
def redis_credentials(credentials: dict[str, Any]) -> dict[str, Any]:
    return {**credentials, "redis_url": REDIS_URL}


def routed(plugin: PluginProcess, creds: dict[str, Any], receiver: Receiver, **overrides: Any) -> tuple[str, dict[str, dict[str, str]]]:
    """Route a director-level request; the links each approver received, by approver id."""
    params = route_params(policy({"hook": "generic"}, TEAM), {"hook": {"url": receiver.url("/generic")}}, **overrides)
    outcome = plugin.run_tool("approval_route", params, creds)
    assert outcome.ok, outcome.error
    assert outcome.variables["notification_status"] == "sent", outcome.variables["notifications"]
    links = {item.json["approver"]["id"]: links_in("generic", item) for item in receiver.at("/generic")
             if item.json["request"]["request_id"] == params["request_id"]}
    return params["request_id"], links


def with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode({"t": token}), ""))


def tampered(url: str, field: str, value: Any) -> str:
    """The link with one bound field changed and the original signature kept."""
    token = parse_qs(urlsplit(url).query)["t"][0]
    payload_b64, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    payload[field] = value
    changed = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return with_token(url, f"{changed}.{mac}")


def claims_of(url: str) -> dict[str, Any]:
    payload_b64 = parse_qs(urlsplit(url).query)["t"][0].split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))


def forged(url: str, secret: str = LINK_SECRET, **changes: Any) -> str:
    """A link signed with ``secret`` (the real one: a link the plugin could have issued) with changes."""
    c = claims_of(url)
    claims = LinkClaims(request_id=c["r"], version=c["v"], event=c["e"], approver_id=c["a"], level=c["l"], expires_at=c["x"], nonce=c["n"],
                        scope=c["w"])
    fields = {"request_id": claims.request_id, "version": claims.version, "event": claims.event, "approver_id": claims.approver_id,
              "level": claims.level, "expires_at": claims.expires_at, "nonce": claims.nonce, "scope": claims.scope, **changes}
    return with_token(url, sign_link(LinkClaims(**fields), secret))


def unchanged(plugin: PluginProcess, creds: dict[str, Any], request_id: str, state: str = "pending", version: int = 1) -> None:
    now = status(plugin, creds, request_id)
    assert (now["state"], now["version"]) == (state, version), now


@pytest.mark.parametrize(
    ("field", "value"),
    [("r", "OTHER-REQUEST"), ("v", 2), ("e", "reject"), ("a", "mallory"), ("l", "executive"), ("x", 4_102_444_800), ("n", "fresh-nonce"),
     ("w", "wOTHERWORKSPACE")],
)
def test_changing_any_bound_field_is_refused_and_changes_nothing(plugin, redis_credentials, receiver, field: str, value: Any) -> None:
    request_id, links = routed(plugin, redis_credentials, receiver)
    bad = tampered(links["dana"]["approve"], field, value)
    for method in ("GET", "POST"):
        page = open_link(plugin, bad, method)
        assert page.status == 403 and "signature does not match" in page.text and "<form" not in page.text
    unchanged(plugin, redis_credentials, request_id)
    # The genuine link still works afterwards: a refused forgery does not burn it.
    assert open_link(plugin, links["dana"]["approve"], "POST").status == 200


def test_a_link_signed_with_another_secret_or_damaged_is_refused(plugin, redis_credentials, receiver) -> None:
    request_id, links = routed(plugin, redis_credentials, receiver)
    other = forged(links["dana"]["approve"], secret="another-secret-of-32-characters!")
    assert open_link(plugin, other, "POST").status == 403
    damaged = with_token(links["dana"]["approve"], "not-a-token")
    page = open_link(plugin, damaged, "POST")
    assert page.status == 400 and "damaged" in page.text
    unchanged(plugin, redis_credentials, request_id)


def test_an_expired_link_is_refused_and_changes_nothing(plugin, redis_credentials, receiver) -> None:
    request_id, links = routed(plugin, redis_credentials, receiver, deadline_hours=0.0004)  # links expire with the deadline
    assert claims_of(links["dana"]["approve"])["x"] - time.time() < 3
    time.sleep(max(0.0, claims_of(links["dana"]["approve"])["x"] - time.time()) + 0.2)
    for method in ("GET", "POST"):
        page = open_link(plugin, links["dana"]["approve"], method)
        assert page.status == 410 and "expired" in page.text
    unchanged(plugin, redis_credentials, request_id)


def test_after_another_approver_decided_the_link_is_stale(plugin, redis_credentials, receiver) -> None:
    request_id, links = routed(plugin, redis_credentials, receiver)
    assert set(links) == {"dana", "dora"}  # both directors; the manager is below the required level
    assert open_link(plugin, links["dora"]["reject"], "POST").status == 200
    preview = open_link(plugin, links["dana"]["approve"], "GET")
    assert preview.status == 409 and "already rejected" in preview.text and "<form" not in preview.text
    late = open_link(plugin, links["dana"]["approve"], "POST")
    assert late.status == 409 and "Refused, nothing changed" in late.text and "stale version" in late.text
    unchanged(plugin, redis_credentials, request_id, "rejected", 2)
    history = status(plugin, redis_credentials, request_id)["history"]
    assert [(h["kind"], h.get("event"), h.get("actor_id")) for h in history] == [("created", None, None), ("transition", "reject", "dora")]


def test_the_requester_and_a_level_too_low_are_refused_by_the_state_machine(plugin, redis_credentials, receiver) -> None:
    request_id, links = routed(plugin, redis_credentials, receiver)
    approve = links["dana"]["approve"]
    as_requester = forged(approve, approver_id="\u0430my", nonce="n-requester")  # Cyrillic а: the requester amy
    page = open_link(plugin, as_requester, "POST")
    assert page.status == 409 and "cannot approve their own request" in page.text
    too_low = forged(approve, approver_id="max", level="manager", nonce="n-manager")
    page = open_link(plugin, too_low, "POST")
    assert page.status == 409 and "below the required level director" in page.text
    unchanged(plugin, redis_credentials, request_id)


def test_a_get_never_decides_and_two_concurrent_posts_apply_once(plugin, redis_credentials, receiver) -> None:
    request_id, links = routed(plugin, redis_credentials, receiver)
    approve = links["dana"]["approve"]
    for _ in range(3):  # link previews, mail scanners
        assert open_link(plugin, approve, "GET").status == 200
    unchanged(plugin, redis_credentials, request_id)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(open_link(plugin, approve, "POST").status)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 409, 409, 409]
    unchanged(plugin, redis_credentials, request_id, "approved", 2)


def test_without_settings_the_endpoint_says_what_to_set(plugin, redis_credentials, receiver) -> None:
    request_id, links = routed(plugin, redis_credentials, receiver)
    target = urlsplit(links["dana"]["approve"])
    path = target.path.removeprefix("/e/test-hook") + "?" + target.query
    no_redis = plugin.invoke_endpoint("POST", path, settings={"link_secret": LINK_SECRET})
    assert no_redis.status == 503 and "redis_url" in no_redis.text
    no_secret = plugin.invoke_endpoint("POST", path, settings={"redis_url": REDIS_URL})
    assert no_secret.status == 503 and "link_secret" in no_secret.text
    for page in (no_redis, no_secret):
        assert LINK_SECRET not in page.text and page.header("Cache-Control") == "no-store"
    unchanged(plugin, redis_credentials, request_id)


def test_the_whole_loop_over_http_through_the_local_endpoint_server(plugin, redis_credentials, receiver) -> None:
    """route -> notification to a local receiver -> click (GET, then the page's POST) -> decision applied,
    with the endpoints served on 127.0.0.1 as ./dev run serve-endpoints serves them."""
    with EndpointServer(plugin, settings(), hook_id="test-hook") as server:
        endpoint = server.endpoint_url("/approval")
        params = route_params(policy({"hook": "generic"}, TEAM), {"hook": {"url": receiver.url("/generic")}},
                              approval_endpoint_url=endpoint)
        outcome = plugin.run_tool("approval_route", params, redis_credentials)
        assert outcome.ok, outcome.error
        item = next(i for i in receiver.at("/generic") if i.json["approver"]["id"] == "dana")
        link = item.json["links"]["approve"]
        assert link.startswith(endpoint + "?t=")
        page = requests.get(link, timeout=10)
        assert page.status_code == 200 and "<form method=\"post\">" in page.text
        token = parse_qs(urlsplit(link).query)["t"][0]
        decided = requests.post(link, data={"t": token}, timeout=10)
        assert decided.status_code == 200 and "Approved" in decided.text
        assert requests.post(link, data={"t": token}, timeout=10).status_code == 409
    unchanged(plugin, redis_credentials, params["request_id"], "approved", 2)
    assert endpoint != ENDPOINT_URL


def test_a_decision_the_store_could_not_apply_is_replayed_from_the_dead_letter_queue_once(
    plugin, credentials, receiver, private_redis
) -> None:
    creds = {**credentials, "redis_url": private_redis.url}
    request_id, links = routed(plugin, creds, receiver)
    c = claims_of(links["dana"]["approve"])
    claims = LinkClaims(request_id=c["r"], version=c["v"], event=c["e"], approver_id=c["a"], level=c["l"], expires_at=c["x"], nonce=c["n"],
                        scope=c["w"])
    # What the endpoint leaves when the store is unreachable or contended: the link's bound fields, no token.
    import redis as redis_py

    client = redis_py.Redis.from_url(private_redis.url)
    dlq = DeadLetterQueue(client, Keys.for_api_key(creds["api_key"]))
    entry_id = dlq.add("decision", "approval store unavailable (test)", {"link": claims.to_dict()})
    listed = plugin.run_tool("approval_dead_letters", {"action": "list", "kind": "decision"}, creds)
    assert [e["id"] for e in listed.variables["entries"]] == [entry_id]
    assert LINK_SECRET not in json.dumps(listed.messages) and "." not in listed.variables["entries"][0]["payload"]["link"]["nonce"]
    first = plugin.run_tool("approval_dead_letters", {"action": "replay", "entry_id": entry_id}, creds)
    assert first.ok and first.variables["status"] == "applied", first.variables
    second = plugin.run_tool("approval_dead_letters", {"action": "replay", "entry_id": entry_id}, creds)
    assert second.ok and second.variables["status"] == "already_replayed"
    unchanged(plugin, creds, request_id, "approved", 2)
    # The link itself now reports its first use rather than deciding again.
    assert open_link(plugin, links["dana"]["approve"], "POST", private_redis.url).status == 409
    assert idempotency_key(claims).startswith("link:")
