"""Notifications to designated approvers, through the plugin runtime with the real Redis: a routed request
notifies a local receiver in each format; the receiver verifies each signature with the vendor's documented
algorithm (written out here, independently of approval/webhook_formats.py); the approve link from each message,
opened through the endpoint as the daemon invokes it (GET, then POST), approves exactly once. A receiver
that answers 500 three times ends in the dead-letter queue; replaying delivers once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import yaml

from devtools.plugin_process import PluginProcess
from gateway.state.keys import Keys

REDIS_URL = "redis://127.0.0.1:6379/9"
ENDPOINT_URL = "http://127.0.0.1:8790/e/test-hook/approval"
LINK_SECRET = "link-secret-" + "k" * 24
SECRETS = {
    "generic": "generic-signing-secret-1234",
    "feishu": "SEC-feishu-signing-secret-5678",
    "lark": "SEC-lark-signing-secret-9012",
    "dingtalk": "SECdingtalk0signing0secret0abcd",
}
FORMATS = ["generic", "feishu", "lark", "dingtalk", "wecom", "slack"]


# --------------------------------------------------------------------------- the local receiver


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny threaded HTTP server on 127.0.0.1 that answers as each vendor answers, and can fail."""

    fail: dict[str, int] = field(default_factory=dict)  # path -> how many 500s to answer first
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append(Received(parts.path, parse_qs(parts.query), dict(self.headers.items()), body))
                    failing = receiver.fail.get(parts.path, 0)
                    if failing:
                        receiver.fail[parts.path] = failing - 1
                if failing:
                    self._answer(500, b'{"error":"boom"}')
                elif parts.path.startswith(("/feishu", "/lark")):
                    self._answer(200, b'{"code":0,"msg":"success","data":{}}')
                elif parts.path.startswith(("/dingtalk", "/wecom")):
                    self._answer(200, b'{"errcode":0,"errmsg":"ok"}')
                elif parts.path.startswith("/slack"):
                    self._answer(200, b"ok", "text/plain")
                else:
                    self._answer(200, b"{}")

            def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- vendors' documented algorithms


def verify_generic(item: Received, secret: str) -> None:
    """X-HolySheep-Signature: v1=hex(HMAC-SHA256(secret, "<timestamp>." + body)); timestamp within 5 minutes."""
    timestamp = item.headers["X-HolySheep-Timestamp"]
    expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + item.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, item.headers["X-HolySheep-Signature"])
    assert abs(time.time() - int(timestamp)) < 300


def verify_feishu(item: Received, secret: str) -> None:
    """Feishu/Lark custom bot: sign = base64(HmacSHA256(key = timestamp + "\\n" + secret, data = "")); within 1 hour."""
    body = item.json
    key = f"{body['timestamp']}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(expected, body["sign"])
    assert abs(time.time() - int(body["timestamp"])) < 3600


def verify_dingtalk(item: Received, secret: str) -> None:
    """DingTalk robot: sign = urlEncode(base64(HmacSHA256(key = secret, data = timestamp_ms + "\\n" + secret)))
    in the query (parse_qs undoes the URL encoding); within 1 hour."""
    timestamp, sign = item.query["timestamp"][0], item.query["sign"][0]
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(expected, sign)
    assert abs(time.time() * 1000 - int(timestamp)) < 3600 * 1000
    assert item.query["access_token"] == ["robot-token"]  # the webhook's own query is kept


def links_in(fmt: str, item: Received) -> dict[str, str]:
    body = item.json
    if fmt == "generic":
        return {"approve": body["links"]["approve"], "reject": body["links"]["reject"]}
    if fmt in ("feishu", "lark"):
        anchors = [el for row in body["content"]["post"]["en_us"]["content"] for el in row if el["tag"] == "a"]
        return {a["text"].lower(): a["href"] for a in anchors}
    if fmt in ("dingtalk", "wecom"):
        text = body["markdown"]["text"] if fmt == "dingtalk" else body["markdown"]["content"]
        return {m.group(1).lower(): m.group(2) for m in re.finditer(r"\[(Approve|Reject)\]\(([^)]+)\)", text)}
    buttons = [el for block in body["blocks"] if block["type"] == "actions" for el in block["elements"]]
    return {b["text"]["text"].lower(): b["url"] for b in buttons}


# --------------------------------------------------------------------------- helpers shared with test_approval_links


def policy(channels: dict[str, str], approvers: dict[str, list[dict[str, str]]]) -> str:
    return yaml.safe_dump({
        "version": "notify-test-1",
        "base_currency": "USD",
        "default": {"level": "manager", "risk": "low"},
        "rules": [{"id": "band-director", "when": {"amount_min": 1000}, "then": {"min_level": "director"}}],
        "sla_hours": {"manager": 24, "director": 48, "vp": 72, "executive": 120},
        "channels": {cid: {"format": fmt} for cid, fmt in channels.items()},
        "approvers": approvers,
    })


def route_params(policy_text: str, targets: dict[str, dict[str, str]], **overrides: Any) -> dict[str, Any]:
    return {
        "request_id": f"NT-{uuid.uuid4().hex[:10]}",
        "content": "Replacement switches for the second floor, quote attached.",
        "amount": 2500, "currency": "USD", "request_type": "purchase", "department": "ops",
        "requester_id": "amy", "model": "none", "policy": policy_text,
        "approval_endpoint_url": ENDPOINT_URL,
        "notification_secrets": json.dumps({"link_secret": LINK_SECRET, "channels": targets}),
        **overrides,
    }


def endpoint_target(url: str) -> str:
    """What the daemon hands the plugin for a link: the path after /e/<hook id>, with the query."""
    parts = urlsplit(url)
    assert parts.path.startswith("/e/test-hook/")
    return parts.path.removeprefix("/e/test-hook") + "?" + parts.query


def settings(redis_url: str = REDIS_URL) -> dict[str, str]:
    return {"link_secret": LINK_SECRET, "redis_url": redis_url}


def open_link(plugin: PluginProcess, url: str, method: str = "GET", redis_url: str = REDIS_URL):
    target = endpoint_target(url)
    if method == "GET":
        return plugin.invoke_endpoint("GET", target, settings=settings(redis_url))
    token = parse_qs(urlsplit(url).query)["t"][0]
    body = ("t=" + token).encode()
    return plugin.invoke_endpoint("POST", target, headers={"Content-Type": "application/x-www-form-urlencoded"}, body=body,
                                  settings=settings(redis_url))


def status(plugin: PluginProcess, credentials: dict[str, Any], request_id: str) -> dict[str, Any]:
    outcome = plugin.run_tool("approval_status", {"request_id": request_id}, credentials)
    assert outcome.ok, outcome.error
    return outcome.variables


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in [LINK_SECRET, *SECRETS.values(), "robot-token"]:
            assert secret not in text


# --------------------------------------------------------------------------- tests


@pytest.fixture
def credentials(credentials: dict[str, Any]) -> dict[str, Any]:
    # The receiver listens on loopback over plain http: an internal target only the administrator can allow.
    return {**credentials, "webhook_allowlist": "127.0.0.1"}


@pytest.fixture
def redis_credentials(credentials: dict[str, Any]) -> dict[str, Any]:
    return {**credentials, "redis_url": REDIS_URL}


def target_for(fmt: str, receiver: Receiver) -> dict[str, str]:
    url = receiver.url(f"/{fmt}")
    if fmt == "dingtalk":
        url += "?access_token=robot-token"
    return {"url": url, **({"secret": SECRETS[fmt]} if fmt in SECRETS else {})}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_signed_as_the_vendor_documents_and_its_approve_link_approves_once(
    plugin: PluginProcess, redis_credentials, receiver: Receiver, fmt: str
) -> None:
    text = policy({"team": fmt}, {"director": [{"id": "dana", "name": "Dana Ito", "channel": "team"}]})
    params = route_params(text, {"team": target_for(fmt, receiver)})
    outcome = plugin.run_tool("approval_route", params, redis_credentials)
    assert outcome.ok, outcome.error
    out = outcome.variables
    assert out["next_state"] == "pending" and out["approver_level"] == "director" and out["store"] == "redis"
    assert out["approvers"] == [{"id": "dana", "level": "director", "name": "Dana Ito", "channel": "team"}]
    assert out["notification_status"] == "sent" and out["notification_warnings"] == []
    [row] = out["notifications"]
    assert row["status"] == "delivered" and row["attempts"] == 1 and row["links"] is True
    assert row["signed"] is (fmt in SECRETS)
    [item] = receiver.at(f"/{fmt}")
    {"generic": verify_generic, "feishu": verify_feishu, "lark": verify_feishu, "dingtalk": verify_dingtalk}.get(
        fmt, lambda _item, _secret: None)(item, SECRETS.get(fmt, ""))
    if fmt == "generic":
        assert item.headers["X-HolySheep-Event"] == "approval.pending"
        assert item.json["request"]["matched_rules"] == ["band-director"] and item.json["request"]["risk_level"] == "low"
        assert item.json["request"]["sla_deadline"].endswith("Z")
    assert params["request_id"] in item.body.decode()
    assert_no_secret(json.dumps(outcome.messages), item.body.decode())
    links = links_in(fmt, item)
    assert set(links) == {"approve", "reject"}

    preview = open_link(plugin, links["approve"], "GET")
    assert preview.status == 200 and "<form method=\"post\">" in preview.text and "Nothing has been decided" in preview.text
    assert status(plugin, redis_credentials, params["request_id"])["version"] == 1  # GET changed nothing
    decided = open_link(plugin, links["approve"], "POST")
    assert decided.status == 200 and "Approved" in decided.text
    again = open_link(plugin, links["approve"], "POST")
    assert again.status == 409 and "already used" in again.text
    after = status(plugin, redis_credentials, params["request_id"])
    assert (after["state"], after["version"], after["last_actor_id"], after["decided"]) == ("approved", 2, "dana", True)


def test_the_requester_is_never_selected_even_spelled_with_look_alikes(plugin: PluginProcess, redis_credentials, receiver) -> None:
    text = policy({"hook": "generic"}, {"director": [
        {"id": "\u0430my", "channel": "hook"},  # Cyrillic а: the requester "amy"
        {"id": "dana", "channel": "hook"},
    ], "vp": [{"id": "victor", "channel": "hook"}]})
    outcome = plugin.run_tool("approval_route", route_params(text, {"hook": target_for("generic", receiver)}), redis_credentials)
    assert outcome.ok, outcome.error
    assert [a["id"] for a in outcome.variables["approvers"]] == ["dana"]
    assert [item.json["approver"]["id"] for item in receiver.at("/generic")] == ["dana"]
    # Only the requester holds the level: the next level up is told instead.
    text = policy({"hook": "generic"}, {"director": [{"id": "AMY", "channel": "hook"}], "vp": [{"id": "victor", "channel": "hook"}]})
    outcome = plugin.run_tool("approval_route", route_params(text, {"hook": target_for("generic", receiver)}), redis_credentials)
    assert [a["id"] for a in outcome.variables["approvers"]] == ["victor"]


def test_an_invalid_approvers_section_is_refused_naming_the_entry(plugin: PluginProcess, credentials) -> None:
    text = policy({"hook": "generic"}, {"director": [{"id": "dana", "channel": "nowhere"}]})
    outcome = plugin.run_tool("approval_route", route_params(text, {}), credentials)
    assert not outcome.ok and "approvers 'director'" in outcome.error_message and "'nowhere' is not defined" in outcome.error_message


def test_without_redis_notifications_go_out_without_links_and_say_why(plugin: PluginProcess, credentials, receiver) -> None:
    text = policy({"hook": "generic"}, {"director": [{"id": "dana", "channel": "hook"}]})
    outcome = plugin.run_tool("approval_route", route_params(text, {"hook": target_for("generic", receiver)}), credentials)
    assert outcome.ok, outcome.error
    out = outcome.variables
    assert out["store"] == "none" and out["notification_status"] == "sent"
    assert out["notifications"][0]["links"] is False
    assert "Redis approval store" in out["notification_warnings"][0]
    [item] = receiver.at("/generic")
    assert "links" not in item.json


def test_auto_approved_and_unconfigured_requests_notify_nobody(plugin: PluginProcess, credentials, receiver) -> None:
    text = policy({"hook": "generic"}, {"director": [{"id": "dana", "channel": "hook"}]})
    unconfigured = plugin.run_tool("approval_route", {**route_params(text, {}), "notification_secrets": ""}, credentials)
    assert unconfigured.ok and unconfigured.variables["notification_status"] == "not_configured"
    bundled = plugin.run_tool("approval_route", {**route_params("", {}), "policy": ""}, credentials)
    assert bundled.ok and bundled.variables["notification_status"] == "no_approvers" and bundled.variables["approvers"] == []
    assert receiver.received == []


def test_a_secret_that_is_not_valid_is_refused_without_repeating_it(plugin: PluginProcess, credentials) -> None:
    params = route_params(policy({}, {}), {})
    params["notification_secrets"] = json.dumps({"link_secret": "short-secret-x", "channels": {}})
    outcome = plugin.run_tool("approval_route", params, credentials)
    assert not outcome.ok and "link_secret: must be at least 16 characters" in outcome.error_message
    assert "short-secret-x" not in outcome.error_message


def test_a_receiver_failing_three_times_ends_in_the_dead_letter_queue_and_a_replay_delivers_once(
    plugin: PluginProcess, credentials, private_redis
) -> None:
    receiver = Receiver(fail={"/flaky": 3})
    try:
        creds = {**credentials, "redis_url": private_redis.url}
        text = policy({"flaky": "generic"}, {"director": [{"id": "dana", "channel": "flaky"}]})
        targets = {"flaky": {"url": receiver.url("/flaky"), "secret": SECRETS["generic"]}}
        params = route_params(text, targets)
        started = time.monotonic()
        outcome = plugin.run_tool("approval_route", params, creds)
        assert outcome.ok, outcome.error
        assert time.monotonic() - started < 10
        out = outcome.variables
        [row] = out["notifications"]
        assert (out["notification_status"], row["status"], row["attempts"], row["http_status"]) == ("failed", "dead_lettered", 3, 500)
        assert "HTTP 500 after 3 attempts" in row["reason"]
        assert len(receiver.at("/flaky")) == 3

        listed = plugin.run_tool("approval_dead_letters", {"action": "list"}, creds)
        assert listed.ok, listed.error
        [entry] = listed.variables["entries"]
        assert entry["id"] == row["dead_letter_id"] and entry["kind"] == "notification"
        assert entry["payload"]["request"]["request_id"] == params["request_id"] and entry["payload"]["channel"] == "flaky"
        stream = Keys.for_api_key(creds["api_key"]).approval_dead_letters()
        raw_stream = json.dumps([[k.decode(), {a.decode(): b.decode() for a, b in v.items()}]
                                 for k, v in redis.Redis.from_url(private_redis.url).xrange(stream)])
        assert row["dead_letter_id"] in raw_stream
        assert_no_secret(json.dumps(listed.messages), raw_stream, json.dumps(outcome.messages))
        assert receiver.url("/flaky") not in raw_stream  # the webhook URL is a secret too

        replay_params = {"action": "replay", "entry_id": entry["id"], "approval_endpoint_url": ENDPOINT_URL,
                         "notification_secrets": params["notification_secrets"]}
        replayed = plugin.run_tool("approval_dead_letters", replay_params, creds)
        assert replayed.ok, replayed.error
        assert (replayed.variables["status"], replayed.variables["attempts"], replayed.variables["total"]) == ("delivered", 1, 0)
        first, delivered = receiver.at("/flaky")[0], receiver.at("/flaky")[3]
        verify_generic(delivered, SECRETS["generic"])
        assert delivered.headers["X-HolySheep-Delivery"] == first.headers["X-HolySheep-Delivery"]  # receivers can dedupe
        assert links_in("generic", delivered) == links_in("generic", first)  # the same single-use links
        again = plugin.run_tool("approval_dead_letters", replay_params, creds)
        assert again.ok and again.variables["status"] == "already_replayed"
        assert len(receiver.at("/flaky")) == 4  # delivered exactly once
        # The replayed links still work, once.
        approve = links_in("generic", delivered)["approve"]
        assert open_link(plugin, approve, "POST", private_redis.url).status == 200
        assert open_link(plugin, approve, "POST", private_redis.url).status == 409
    finally:
        receiver.close()


def test_dead_letters_can_be_dropped_and_need_redis(plugin: PluginProcess, credentials, private_redis) -> None:
    receiver = Receiver(fail={"/down": 99})
    try:
        creds = {**credentials, "redis_url": private_redis.url}
        text = policy({"down": "slack"}, {"director": [{"id": "dana", "channel": "down"}]})
        outcome = plugin.run_tool("approval_route", route_params(text, {"down": {"url": receiver.url("/down")}}), creds)
        entry_id = outcome.variables["notifications"][0]["dead_letter_id"]
        dropped = plugin.run_tool("approval_dead_letters", {"action": "drop", "entry_id": entry_id}, creds)
        assert dropped.ok and (dropped.variables["status"], dropped.variables["total"]) == ("dropped", 0)
        gone = plugin.run_tool("approval_dead_letters", {"action": "replay", "entry_id": entry_id}, creds)
        assert not gone.ok and "no dead letter" in gone.error_message
        no_redis = plugin.run_tool("approval_dead_letters", {"action": "list"}, credentials)
        assert not no_redis.ok and "redis_url" in no_redis.error_message
    finally:
        receiver.close()


def link_claims(url: str) -> dict[str, Any]:
    token = parse_qs(urlsplit(url).query)["t"][0]
    payload = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_an_accepted_escalate_tells_the_next_level_with_links_bound_to_the_new_version(
    plugin: PluginProcess, redis_credentials, receiver: Receiver
) -> None:
    text = policy({"hook": "generic"}, {"manager": [{"id": "mia", "name": "Mia Chen", "channel": "hook"}],
                                        "director": [{"id": "dana", "name": "Dana Ito", "channel": "hook"}]})
    creds = {**redis_credentials, "approval_policy": text}  # the provider's policy: both tools read it
    targets = {"hook": target_for("generic", receiver)}
    params = {**route_params("", targets), "amount": 400}  # under the director band: pending at manager
    routed = plugin.run_tool("approval_route", params, creds)
    assert routed.ok, routed.error
    assert (routed.variables["next_state"], routed.variables["approver_level"]) == ("pending", "manager")
    assert [item.json["approver"]["id"] for item in receiver.at("/generic")] == ["mia"]
    request_id = params["request_id"]

    escalate = {"request_id": request_id, "event": "escalate", "actor_id": "mia", "expected_version": 1,
                "idempotency_key": f"esc-{request_id}", "approval_endpoint_url": ENDPOINT_URL,
                "notification_secrets": params["notification_secrets"]}
    outcome = plugin.run_tool("approval_transition", escalate, creds)
    assert outcome.ok, outcome.error
    out = outcome.variables
    assert (out["accepted"], out["state"], out["version"], out["required_level"]) == (True, "escalated", 2, "director")
    assert out["approvers"] == [{"id": "dana", "level": "director", "name": "Dana Ito", "channel": "hook"}]
    assert (out["notification_status"], out["notification_warnings"]) == ("sent", [])
    [row] = out["notifications"]
    assert (row["approver_id"], row["status"], row["links"], row["signed"]) == ("dana", "delivered", True, True)
    assert_no_secret(json.dumps(outcome.messages))

    first, told = receiver.at("/generic")  # the manager is not told again
    assert told.json["approver"]["id"] == "dana"
    verify_generic(told, SECRETS["generic"])
    assert told.headers["X-HolySheep-Event"] == "approval.escalated"
    facts = told.json["request"]
    assert (facts["request_id"], facts["version"], facts["required_level"], facts["state"]) == (request_id, 2, "director", "escalated")
    assert (facts["requester_id"], facts["amount"], facts["currency"], facts["request_type"]) == ("amy", "400.0", "USD", "purchase")
    assert facts["summary"] == first.json["request"]["summary"] and facts["sla_hours"] == 48
    links = links_in("generic", told)
    assert link_claims(links["approve"])["v"] == 2 and link_claims(first.json["links"]["approve"])["v"] == 1

    # A retried escalate (same idempotency key) returns the first outcome and tells nobody twice.
    again = plugin.run_tool("approval_transition", escalate, creds)
    assert again.ok and again.variables["version"] == 2 and again.variables["notification_status"] == "skipped"
    assert len(receiver.at("/generic")) == 2
    # The manager's link, bound to version 1, no longer decides.
    assert open_link(plugin, first.json["links"]["approve"], "POST").status == 409
    # The director's link approves once.
    assert open_link(plugin, links["approve"], "POST").status == 200
    assert open_link(plugin, links["approve"], "POST").status == 409
    after = status(plugin, redis_credentials, request_id)
    assert (after["state"], after["version"], after["last_actor_id"]) == ("approved", 3, "dana")


def test_transitions_other_than_an_accepted_escalate_notify_nobody(plugin: PluginProcess, credentials, receiver) -> None:
    # mia is a manager the policy names: with named approvers only they (and the requester) may act.
    text = policy({"hook": "generic"}, {"manager": [{"id": "mia"}], "director": [{"id": "dana", "channel": "hook"}]})
    secrets = json.dumps({"link_secret": LINK_SECRET, "channels": {"hook": target_for("generic", receiver)}})
    common = {"request_id": "NT-carried", "actor_id": "mia", "state": "pending", "required_level": "manager",
              "requester_id": "amy", "notification_secrets": secrets, "approval_endpoint_url": ENDPOINT_URL}
    claim = plugin.run_tool("approval_transition", {**common, "event": "claim", "actor_level": "manager"},
                            {**credentials, "approval_policy": text})
    assert claim.ok, claim.error
    assert (claim.variables["notification_status"], claim.variables["approvers"], claim.variables["notifications"]) == ("skipped", [], [])
    # Without the Redis store nothing holds the request's summary: skipped, saying why.
    escalated = plugin.run_tool("approval_transition", {**common, "event": "escalate"}, {**credentials, "approval_policy": text})
    assert escalated.ok and escalated.variables["accepted"] is True
    assert escalated.variables["notification_status"] == "skipped"
    assert "Redis approval store" in escalated.variables["notification_warnings"][0]
    assert receiver.received == []


def test_a_request_stored_without_a_summary_still_escalates_and_says_why_nobody_was_told(
    plugin: PluginProcess, redis_credentials, receiver: Receiver
) -> None:
    text = policy({"hook": "generic"}, {"manager": [{"id": "mia"}], "director": [{"id": "dana", "channel": "hook"}]})
    creds = {**redis_credentials, "approval_policy": text}
    params = {**route_params("", {}), "amount": 400, "notification_secrets": ""}
    assert plugin.run_tool("approval_route", params, creds).ok
    # A record routed before summaries were stored: only the record and its history.
    summary = Keys.for_api_key(creds["api_key"]).approval(params["request_id"], "summary")
    assert redis.Redis.from_url(REDIS_URL).delete(summary) == 1
    secrets = json.dumps({"link_secret": LINK_SECRET, "channels": {"hook": target_for("generic", receiver)}})
    outcome = plugin.run_tool("approval_transition", {"request_id": params["request_id"], "event": "escalate", "actor_id": "mia",
                                                      "notification_secrets": secrets}, creds)
    assert outcome.ok, outcome.error
    out = outcome.variables
    assert (out["accepted"], out["version"], out["notification_status"]) == (True, 2, "skipped")
    assert "holds no summary" in out["notification_warnings"][0]
    assert receiver.received == []
