"""Approvers in the policy, signed links, vendor signatures and answers (unit level; the runtime tests
exercise the same through the plugin)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
import yaml

from approval.approvers import select_approvers
from approval.links import BAD_SIGNATURE, LINK_EXPIRED, MALFORMED, LinkClaims, LinkError, link_url, sign_link, verify_link
from approval.policy import BUNDLED_POLICY_PATH, Policy, PolicyError
from approval.webhook_formats import (
    ChannelTarget,
    NotificationSecrets,
    accept_for,
    dingtalk_sign,
    feishu_sign,
    signed_request,
    url_secrets,
    verify_generic,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "approval_policy_with_approvers.yaml"
SECRET = "s" * 32


def with_people(**extra: object) -> dict:
    data = yaml.safe_load(BUNDLED_POLICY_PATH.read_text())
    data.update(extra)
    return data


def test_the_example_policy_loads_and_the_bundled_hash_is_unchanged_by_the_new_fields() -> None:
    example = Policy.load(EXAMPLE.read_text())
    assert example.approvers["vp"][0].channel == "leadership-slack" and example.channels["erp-hook"].format == "generic"
    plain = Policy.load(yaml.safe_dump(with_people()))
    assert plain.sha256 == Policy.bundled().sha256 and "approvers" not in plain.canonical()
    assert example.sha256 != Policy.load(yaml.safe_dump({**yaml.safe_load(EXAMPLE.read_text()), "approvers": {"vp": ["x"]}})).sha256


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"approvers": {"boss": ["x"]}}, "'boss' is not a level"),
        ({"approvers": {"manager": []}}, "approvers 'manager': must be a non-empty list"),
        ({"approvers": {"manager": [{"id": ""}]}}, "approvers 'manager' #1: 'id' must be a person id"),
        ({"approvers": {"manager": [{"id": "a", "role": "x"}]}}, "unknown field(s) 'role'"),
        ({"approvers": {"manager": [{"id": "a", "channel": "nope"}]}}, "channel 'nope' is not defined"),
        ({"approvers": {"manager": ["alice"], "director": ["ＡＬＩＣＥ"]}}, "the same person as"),
        ({"channels": {"c": {"format": "teams"}}}, "'format' must be one of generic, feishu, lark, dingtalk, wecom, slack"),
        ({"channels": {"c": {"format": "slack", "url": "https://hooks.slack.com/x"}}}, "notification_secrets parameter, not in the policy"),
        ({"channels": {"bad id!": "slack"}}, "is not a channel id"),
    ],
)
def test_invalid_approvers_and_channels_name_the_entry(extra: dict, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.load(yaml.safe_dump(with_people(**extra), allow_unicode=True))
    assert message in str(caught.value)


def test_selection_skips_the_requester_in_any_spelling_and_climbs_only_when_needed() -> None:
    policy = Policy.load(yaml.safe_dump(with_people(
        channels={"c": "generic"},
        approvers={"director": ["Alice", "bob"], "vp": ["victor"], "executive": ["eve"]},
    )))
    assert [a.id for a in select_approvers(policy.approvers, "director", "carol")] == ["Alice", "bob"]
    assert [a.id for a in select_approvers(policy.approvers, "director", "\u0430lice\u200b")] == ["bob"]
    assert [a.id for a in select_approvers(policy.approvers, "manager", "x")] == ["Alice", "bob"]  # nearest level up
    only_vp = Policy.load(yaml.safe_dump(with_people(approvers={"vp": ["victor"]})))
    assert select_approvers(only_vp.approvers, "vp", "VICTOR") == []


def claims(**changes: object) -> LinkClaims:
    fields = {"request_id": "R-1", "version": 1, "event": "approve", "approver_id": "dana", "level": "director",
              "expires_at": int(time.time()) + 600, "nonce": "n1", "scope": "wA", **changes}
    return LinkClaims(**fields)  # type: ignore[arg-type]


def test_links_verify_and_refuse_tampering_another_secret_and_expiry() -> None:
    token = sign_link(claims(), SECRET)
    assert verify_link(token, SECRET, time.time()) == claims()
    payload, mac = token.split(".")
    for field, value in (("r", "R-2"), ("v", 9), ("a", "eve"), ("e", "reject"), ("l", "executive"), ("n", "n2"), ("w", "wB")):
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        data[field] = value
        forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode() + "." + mac
        with pytest.raises(LinkError) as caught:
            verify_link(forged, SECRET, time.time())
        assert caught.value.code == BAD_SIGNATURE
    with pytest.raises(LinkError) as caught:
        verify_link(token, "t" * 32, time.time())
    assert caught.value.code == BAD_SIGNATURE
    with pytest.raises(LinkError) as caught:
        verify_link(sign_link(claims(expires_at=int(time.time()) - 1), SECRET), SECRET, time.time())
    assert caught.value.code == LINK_EXPIRED
    for junk in ("", "a.b.c", "x" * 5000, "!!.??", None):
        with pytest.raises(LinkError) as caught:
            verify_link(junk, SECRET, time.time())
        assert caught.value.code in (MALFORMED, BAD_SIGNATURE)
    assert link_url("https://d.example/e/h/approval?x=1", "TOK") == "https://d.example/e/h/approval?x=1&t=TOK"


def test_vendor_signatures_follow_the_documented_algorithms() -> None:
    # Feishu/Lark: HMAC-SHA256 keyed with "timestamp\nsecret" over an empty message, base64.
    assert feishu_sign("abc", "1700000000") == base64.b64encode(hmac.new(b"1700000000\nabc", b"", hashlib.sha256).digest()).decode()
    # DingTalk: HMAC-SHA256 keyed with the secret over "timestamp\nsecret", base64 (URL-encoded in the query).
    assert dingtalk_sign("abc", "1700000000000") == base64.b64encode(
        hmac.new(b"abc", b"1700000000000\nabc", hashlib.sha256).digest()).decode()
    url, body, headers = signed_request("generic", ChannelTarget("https://h.example/x", SECRET), {"a": 1}, event="e", delivery_id="d", now=1700000000)
    assert verify_generic(SECRET, headers["X-HolySheep-Timestamp"], body, headers["X-HolySheep-Signature"], now=1700000010)
    assert not verify_generic(SECRET, headers["X-HolySheep-Timestamp"], body + b" ", headers["X-HolySheep-Signature"], now=1700000010)
    assert not verify_generic(SECRET, headers["X-HolySheep-Timestamp"], body, headers["X-HolySheep-Signature"], now=1700001000)
    url, _body, _headers = signed_request("dingtalk", ChannelTarget("https://oapi.example/robot/send?access_token=t", "sec"), {},
                                          event="e", delivery_id="d", now=1700000000)
    assert url.startswith("https://oapi.example/robot/send?access_token=t&timestamp=1700000000000&sign=")


def test_vendor_answers_with_error_codes_in_a_200_are_failures_and_their_rate_limits_retried() -> None:
    assert accept_for("feishu")(200, b'{"code":0,"msg":"success"}')[0] == "ok"
    assert accept_for("feishu")(200, b'{"code":19021,"msg":"sign match fail"}') == ("fail", "feishu error code 19021: 'sign match fail'")
    assert accept_for("dingtalk")(200, b'{"errcode":130101,"errmsg":"send too fast"}')[0] == "retry"
    assert accept_for("wecom")(200, b'{"errcode":93000,"errmsg":"invalid webhook url"}')[0] == "fail"
    assert accept_for("slack")(429, b"rate_limited")[0] == "retry"
    assert accept_for("slack")(404, b"no_service")[0] == "fail"
    assert accept_for("generic")(503, b"")[0] == "retry"


def test_notification_secrets_are_validated_without_repeating_values() -> None:
    parsed = NotificationSecrets.parse(json.dumps({"link_secret": SECRET, "channels": {"c": {"url": "https://h.example/x?key=K", "secret": "z"}}}))
    # Only the token-bearing parts of a webhook URL are secrets (here none: "K" is too short to be one), never
    # its host, which a redactor would otherwise hide from every later connection message.
    assert parsed.channels["c"].url.endswith("key=K") and set(parsed.values()) == {SECRET, "z"}
    assert url_secrets("https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX") == ["XXXXXXXXXXXXXXXXXXXXXXXX"]
    assert url_secrets("https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef") == ["0123456789abcdef"]
    for bad in ('{"link_secret": "tiny-secret"}', '{"channels": {"c": {"url": "ftp://x/secret-path"}}}', '{"token": "hidden-value"}', "[1, 2"):
        with pytest.raises(ValueError) as caught:
            NotificationSecrets.parse(bad)
        assert "tiny-secret" not in str(caught.value) and "secret-path" not in str(caught.value) and "hidden-value" not in str(caught.value)


def test_a_link_without_a_workspace_is_refused_as_issued_before_scoping() -> None:
    """Links signed before approval records belonged to a workspace name no workspace: the endpoint cannot
    know whose record they decide, so they are refused, saying why (issue 21)."""
    import base64
    import json

    from approval.links import _mac

    payload = {k: v for k, v in claims().to_payload().items() if k != "w"}
    payload_b64 = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    token = payload_b64 + "." + base64.urlsafe_b64encode(_mac(SECRET, payload_b64)).rstrip(b"=").decode()
    with pytest.raises(LinkError) as refused:
        verify_link(token, SECRET, time.time())
    assert refused.value.code == MALFORMED and "issued before approval records belonged to a workspace" in str(refused.value)
    assert verify_link(sign_link(claims(), SECRET), SECRET, time.time()).scope == "wA"
