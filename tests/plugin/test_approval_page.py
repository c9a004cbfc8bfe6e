"""The page an approval link opens, end to end: approval_route through the runtime tells two approvers (one
reads Chinese, set in the policy), the links are opened over HTTP through the local endpoint server (the
plugin's endpoint as the daemon invokes it), with the real Redis. The page shows the request, carries both
decisions, each with its own single-use token, and a used link shows what was decided.

The same page in headless Chromium (desktop and phone width, screenshots): test_approval_page_browser.py."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from approval.decision_page import CONTENT_SECURITY_POLICY
from devtools.endpoint_server import EndpointServer
from devtools.plugin_process import PluginProcess
from tests.approval.test_decision_page import Page
from tests.plugin.test_approval_notifications import LINK_SECRET, Receiver, route_params, status

REDIS_URL = "redis://127.0.0.1:6379/15"
HOSTILE = '<script>alert("x")</script> <img src=x onerror=alert(1)>'
CONTENT = f"Replacement switches for the second floor. {HOSTILE} " + "Quote attached, three vendors compared. " * 20


def page_policy(**top: Any) -> str:
    return yaml.safe_dump({
        "version": "page-test-1",
        "base_currency": "USD",
        "currency_rates": {"USD": 1, "EUR": 1.08},
        "default": {"level": "manager", "risk": "low"},
        "rules": [{"id": "band-director", "when": {"amount_min": 1000}, "then": {"min_level": "director", "min_risk": "medium"}}],
        "sla_hours": {"manager": 24, "director": 48},
        "channels": {"hook": {"format": "generic"}},
        "approvers": {"director": [{"id": "dana", "channel": "hook", "language": "zh_Hans"}, {"id": "dora", "channel": "hook"}]},
        **top,
    })


@pytest.fixture
def served(plugin: PluginProcess):
    with EndpointServer(plugin, {"link_secret": LINK_SECRET, "redis_url": REDIS_URL}, hook_id="page-hook") as server:
        yield server


@pytest.fixture
def redis_credentials(credentials: dict[str, Any]) -> dict[str, Any]:
    # The notifications go to a loopback receiver: plain http to it must be allowed by the provider.
    return {**credentials, "redis_url": REDIS_URL, "webhook_allowlist": "127.0.0.1"}


def route(plugin: PluginProcess, creds: dict[str, Any], receiver: Receiver, served: EndpointServer, **overrides: Any
          ) -> tuple[str, dict[str, dict[str, str]]]:
    """Route a 2,500 EUR purchase; the links each approver received."""
    params = route_params(page_policy(), {"hook": {"url": receiver.url("/generic")}}, content=CONTENT, amount=2500,
                          currency="EUR", department="IT Security", request_id=f"PG-{uuid.uuid4().hex[:10]}",
                          approval_endpoint_url=served.endpoint_url("/approval"), **overrides)
    outcome = plugin.run_tool("approval_route", params, creds)
    assert outcome.ok, outcome.error
    assert outcome.variables["notification_status"] == "sent", outcome.variables["notifications"]
    links = {item.json["approver"]["id"]: item.json["links"] for item in receiver.at("/generic")
             if item.json["request"]["request_id"] == params["request_id"]}
    return params["request_id"], links


def token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def test_the_page_shows_the_request_in_the_approvers_language_with_both_decisions(plugin, redis_credentials, receiver, served) -> None:
    request_id, links = route(plugin, redis_credentials, receiver, served)
    answer = requests.get(links["dana"]["approve"], timeout=20)
    assert answer.status_code == 200
    assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Content-Type"].startswith("text/html")
    page = Page(answer.text)
    for text in (f"审批申请 · {request_id}", "批准还是驳回？", "申请人 amy", "2,500.00 EUR", "≈ 2,700.00 USD（本位币）",
                 "类型 purchase", "部门 IT Security", "风险 中", "命中规则 band-director", "SLA 截止时间", "UTC（2 天后）",
                 "状态 待审批，需总监审批", "您的身份 dana（总监）", "申请内容（前 500 个字符）", "Replacement switches for the second floor."):
        assert text in page.text, text
    # The request's text, escaped and cut to 500 characters (the route stored at most that, with an ellipsis).
    assert HOSTILE in page.text and "<script" not in answer.text and "<img" not in answer.text
    assert "script" not in page.tags and "img" not in page.tags
    assert "Quote attached, three vendors compared. " * 5 in page.text and CONTENT.strip() not in page.text
    # Both decisions one click apart, each carrying its own link's token: the reject token is the very one
    # the notification carried (no third link exists).
    assert [(f["method"], f["button"], f["t"]) for f in page.forms] == [
        ("post", "approve", token(links["dana"]["approve"])), ("post", "reject", token(links["dana"]["reject"]))]
    # The same from the reject link; the other approver reads English.
    from_reject = Page(requests.get(links["dana"]["reject"], timeout=20).text)
    assert [f["t"] for f in from_reject.forms] == [token(links["dana"]["approve"]), token(links["dana"]["reject"])]
    english = Page(requests.get(links["dora"]["approve"], timeout=20).text)
    assert "Approve or reject?" in english.text and "Requester amy" in english.text and "Matched rules band-director" in english.text
    assert "Risk medium" in english.text and "≈ 2,700.00 USD (base currency)" in english.text
    # Opening the pages decided nothing.
    now = status(plugin, redis_credentials, request_id)
    assert (now["state"], now["version"]) == ("pending", 1)


def test_the_other_decision_on_the_page_decides_once_and_both_links_then_say_what_was_decided(
    plugin, redis_credentials, receiver, served
) -> None:
    request_id, links = route(plugin, redis_credentials, receiver, served)
    opened = links["dana"]["approve"]
    reject_form = Page(requests.get(opened, timeout=20).text).forms[1]
    # The reject form posts to the page's own URL (the approve link's) with the reject token in the body.
    decided = requests.post(opened, data={"t": reject_form["t"], "decision": reject_form["button"]}, timeout=20)
    assert decided.status_code == 200
    page = Page(decided.text)
    assert "已驳回" in page.text and "您已驳回此申请。" in page.text and "申请人 amy" in page.text and not page.forms
    now = status(plugin, redis_credentials, request_id)
    assert (now["state"], now["version"]) == ("rejected", 2)
    assert [(h.get("event"), h.get("actor_id")) for h in now["history"][1:]] == [("reject", "dana")]
    # The reject link is used: its page says what it decided, and offers nothing.
    used = requests.get(links["dana"]["reject"], timeout=20)
    assert used.status_code == 409
    used_page = Page(used.text)
    assert "此链接已被使用" in used_page.text and "首次使用：已驳回" in used_page.text and not used_page.forms
    again = requests.post(links["dana"]["reject"], data={"t": token(links["dana"]["reject"])}, timeout=20)
    assert again.status_code == 409 and "首次使用：已驳回" in Page(again.text).text
    # The approve link: nothing is left to decide; a POST of it is refused and changes nothing.
    closed = requests.get(opened, timeout=20)
    closed_page = Page(closed.text)
    assert closed.status_code == 409 and "该申请已是“已驳回”状态。" in closed_page.text and "<form" not in closed.text
    assert "决定人 dana（总监）" in closed_page.text  # who decided, from the record's history
    late = requests.post(opened, data={"t": token(opened)}, timeout=20)
    assert late.status_code == 409 and "stale version" in late.text
    assert (status(plugin, redis_credentials, request_id)["version"]) == 2


def test_an_approved_link_reports_its_first_use_in_english(plugin, redis_credentials, receiver, served) -> None:
    request_id, links = route(plugin, redis_credentials, receiver, served)
    link = links["dora"]["approve"]
    first = requests.post(link, data={"t": token(link)}, timeout=20)
    assert first.status_code == 200 and "You approved this request." in Page(first.text).text
    for answer in (requests.get(link, timeout=20), requests.post(link, data={"t": token(link)}, timeout=20)):
        page = Page(answer.text)
        assert answer.status_code == 409 and "This link was already used" in page.text
        assert "First use: approved, " in page.text and " UTC (" in page.text and not page.forms
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert status(plugin, redis_credentials, request_id)["state"] == "approved"
    other = Page(requests.get(links["dana"]["reject"], timeout=20).text)
    assert "无需再作决定" in other.text and "决定人 dora（总监）" in other.text and not other.forms


def test_a_damaged_link_follows_the_browsers_language(served) -> None:
    url = served.endpoint_url("/approval") + "?t=damaged"
    zh = requests.get(url, headers={"Accept-Language": "zh-CN,zh;q=0.9"}, timeout=20)
    assert zh.status_code == 400 and "此链接无法使用" in zh.text and "damaged" in zh.text
    assert zh.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    en = requests.get(url, timeout=20)
    assert "This link cannot be used" in en.text
