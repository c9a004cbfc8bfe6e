"""The page an approval link opens, rendered alone (approval.decision_page) and the settings and link fields
it depends on (the policy's ``language``, the link's language, SLA deadline and sibling nonce). The same
page through the runtime, the endpoint and Redis: tests/plugin/test_approval_page.py."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from approval.approvers import Approver
from approval.decision_page import (
    CONTENT_SECURITY_POLICY,
    HEADERS,
    STYLE,
    TEXT,
    DecisionForm,
    closed_page,
    confirm_page,
    language_of,
    message_page,
    outcome_page,
    render,
)
from approval.links import LinkClaims, LinkError, sign_link, verify_link
from approval.policy import Policy, PolicyError
from approval.transitions import ApprovalRecord
from approval.webhook_formats import issue_links

NOW = 1_800_000_000.0
SECRET = "page-test-secret-" + "s" * 20
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)> "quoted"'


def claims(language: str = "", event: str = "approve", other_nonce: str = "nonce-reject", **changes: Any) -> LinkClaims:
    fields: dict[str, Any] = {
        "request_id": "PR-7", "version": 1, "event": event, "approver_id": "lin.wei", "level": "director",
        "expires_at": int(NOW + 72 * 3600), "nonce": "nonce-approve", "scope": "wTESTSCOPE", "language": language,
        "sla_deadline": int(NOW + 48 * 3600), "other_nonce": other_nonce,
    }
    fields.update(changes)
    return LinkClaims(**fields)


def summary(**changes: Any) -> dict[str, Any]:
    out = {
        "request_id": "PR-7", "requester_id": "amy", "request_type": "purchase", "department": "IT Security",
        "amount": "2500.0", "currency": "EUR", "amount_base": "2700.00 USD", "risk_level": "medium",
        "matched_rules": ["band-director", "security-purchases"], "summary": "Replacement switches for floor 2.",
    }
    out.update(changes)
    return out


def record(state: str = "pending", version: int = 1) -> ApprovalRecord:
    return ApprovalRecord("PR-7", state, version, "director", "amy", deadline=datetime.fromtimestamp(NOW, UTC) + timedelta(hours=30))


def both_forms() -> list[DecisionForm]:
    return [DecisionForm("approve", "token-approve"), DecisionForm("reject", "token-reject")]


BLOCKS = frozenset({"p", "h1", "h2", "dt", "dd", "div", "blockquote", "button", "small", "footer", "br"})


class Page(HTMLParser):
    """The page as a browser reads it: visible text, forms with their hidden tokens, elements by tag."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text_parts: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.tags: list[str] = []
        self._skip = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in BLOCKS:
            self.text_parts.append(" ")
        a = dict(attrs)
        if tag in ("style", "title"):
            self._skip += 1
        if tag == "form":
            self.forms.append({"method": a.get("method") or "", "action": a.get("action") or ""})
        if tag == "input" and self.forms:
            self.forms[-1][a.get("name") or ""] = a.get("value") or ""
        if tag == "button" and self.forms:
            self.forms[-1]["button"] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCKS:
            self.text_parts.append(" ")
        if tag in ("style", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.text_parts).split())


# --------------------------------------------------------------------------- what the approver sees


def test_the_confirmation_page_shows_every_fact_of_the_request_and_both_decisions() -> None:
    html = render(confirm_page(claims(), record(), summary(), both_forms(), now=NOW))
    page = Page(html)
    for fact in ("Requester amy", "Type purchase", "Department IT Security", "Risk medium",
                 "Matched rules band-director security-purchases", "Replacement switches for floor 2.",
                 "2,500.00 EUR", "≈ 2,700.00 USD (base currency)", "You lin.wei (director)", "State pending, needs director"):
        assert fact in page.text, fact
    # Times with their zone, and how far away they are.
    assert "SLA deadline 2027-01-17 08:00 UTC (in 2 d)" in page.text
    assert "Decision needed by 2027-01-16 14:00 UTC (in 30 h)" in page.text
    assert "Link valid until 2027-01-18 08:00 UTC (in 3 d)" in page.text
    assert [(f["method"], f["action"], f["t"], f["button"]) for f in page.forms] == [
        ("post", "", "token-approve", "approve"), ("post", "", "token-reject", "reject")]
    assert "Nothing has been decided yet" in page.text


def test_the_base_currency_is_shown_only_when_it_differs() -> None:
    same = Page(render(confirm_page(claims(), record(), summary(currency="USD", amount_base="2500.00 USD"), both_forms(), now=NOW)))
    assert "2,500.00 USD" in same.text and "base currency" not in same.text


def test_everything_from_the_request_is_escaped() -> None:
    hostile = summary(requester_id=HOSTILE, request_type=HOSTILE, department=HOSTILE, summary=HOSTILE,
                      matched_rules=[HOSTILE], currency=HOSTILE, amount=HOSTILE)
    html = render(confirm_page(claims(approver_id=HOSTILE), record(), hostile, both_forms(), now=NOW))
    assert "<script" not in html and "<img" not in html and 'src=x' not in html.replace("src=x onerror", "")
    page = Page(html)
    assert "script" not in page.tags and "img" not in page.tags
    assert HOSTILE in page.text  # shown as text, exactly


def test_the_request_text_is_cut_to_its_first_500_characters() -> None:
    long_text = "word " * 200
    page = Page(render(confirm_page(claims(), record(), summary(summary=long_text), both_forms(), now=NOW)))
    assert "Request (first 500 characters)" in page.text
    quoted = re.search(r"<blockquote>(.*?)</blockquote>", render(confirm_page(claims(), record(), summary(summary=long_text),
                                                                                both_forms(), now=NOW)), re.S)
    assert quoted is not None and len(quoted.group(1)) <= 501


def test_zh_hans_labels_and_values() -> None:
    html = render(confirm_page(claims("zh_Hans"), record(), summary(risk_level="high"), both_forms(), now=NOW))
    page = Page(html)
    assert '<html lang="zh-Hans">' in html
    for text in ("审批申请", "批准还是驳回？", "申请人 amy", "金额", "类型 purchase", "部门 IT Security", "风险 高",
                 "命中规则 band-director security-purchases", "SLA 截止时间 2027-01-17 08:00 UTC（2 天后）",
                 "状态 待审批，需总监审批", "您的身份 lin.wei（总监）", "≈ 2,700.00 USD（本位币）", "申请内容"):
        assert text in page.text, text
    assert [f["button"] for f in page.forms] == ["approve", "reject"]
    assert "批准 驳回" in page.text
    assert "Approve" not in page.text and "Requester" not in page.text


def test_every_language_has_every_text() -> None:
    keys = set(TEXT["en_US"])
    for language, texts in TEXT.items():
        assert set(texts) == keys, language


def test_a_used_link_shows_what_its_first_use_decided_and_offers_nothing() -> None:
    first = {"status": "applied", "state": "approved", "version": 2, "at": "2027-01-15T07:50:00Z", "code": "ok"}
    model = closed_page(claims(), record("approved", 2), summary(), first, now=NOW)
    page = Page(render(model))
    assert model.status == 409 and not page.forms
    assert "This link was already used" in page.text and "First use: approved, 2027-01-15 07:50 UTC (10 min ago)" in page.text
    assert "State approved" in page.text and "needs" not in page.text and "Link valid until" not in page.text
    zh = Page(render(closed_page(claims("zh_Hans"), record("approved", 2), summary(), first, now=NOW)))
    assert "此链接已被使用" in zh.text and "首次使用：已批准，2027-01-15 07:50 UTC（10 分钟前）" in zh.text


def test_a_used_link_that_was_refused_says_why() -> None:
    first = {"status": "refused", "message": "Refused, nothing changed: lin.wei is below the required level vp."}
    page = Page(render(closed_page(claims(), record(), summary(), first, now=NOW)))
    assert "First use: refused" in page.text and "below the required level vp" in page.text and not page.forms


def test_a_decided_or_changed_request_offers_no_decision() -> None:
    change = {"kind": "transition", "event": "reject", "actor_id": "dora", "actor_level": "director", "at": "2027-01-15T07:00:00Z"}
    done = Page(render(closed_page(claims(), record("rejected", 2), summary(), None, now=NOW, last_change=change)))
    assert "Nothing left to decide" in done.text and "already rejected" in done.text and not done.forms
    assert "Decided by dora (director) 2027-01-15 07:00 UTC (1 h ago)" in done.text
    changed = Page(render(closed_page(claims(), record("escalated", 2), summary(), None, now=NOW)))
    assert "version 1, now 2, escalated" in changed.text and not changed.forms
    unknown = closed_page(claims(), None, None, None, now=NOW)
    assert unknown.status == 409 and "No approval request PR-7" in Page(render(unknown)).text


def test_after_the_post_the_page_says_what_was_decided_with_the_facts() -> None:
    model = outcome_page(claims(event="reject"), "applied", 200, "", record=record("rejected", 2), summary=summary(), first=None,
                         state="rejected", version=2, now=NOW)
    page = Page(render(model))
    assert "Rejected" in page.text and "You rejected this request." in page.text and "Requester amy" in page.text
    assert not page.forms
    zh = Page(render(outcome_page(claims("zh_Hans"), "applied", 200, "", record=record("approved", 2), summary=summary(),
                                  first=None, state="approved", version=2, now=NOW)))
    assert "已批准" in zh.text and "您已批准此申请。" in zh.text
    refused = Page(render(outcome_page(claims(), "refused", 409, "Refused, nothing changed: stale version.", record=record(),
                                       summary=summary(), first=None, now=NOW)))
    assert "Refused, nothing changed" in refused.text and "stale version" in refused.text


def test_a_page_with_one_decision_says_where_the_other_is() -> None:
    page = Page(render(confirm_page(claims(other_nonce=""), record(), summary(), [DecisionForm("approve", "t1")], now=NOW)))
    assert [f["button"] for f in page.forms] == ["approve"]
    assert "To reject, use the Reject link in the notification." in page.text
    used = {"status": "refused", "message": "Refused"}
    page = Page(render(confirm_page(claims(), record(), summary(), [DecisionForm("approve", "t1")], now=NOW, sibling_first=used)))
    assert "The Reject link was used already: refused." in page.text


def test_without_a_summary_the_page_says_where_the_details_are() -> None:
    page = Page(render(confirm_page(claims(), record(), None, both_forms(), now=NOW)))
    assert "holds no summary of this request" in page.text and "Requester amy" in page.text


def test_the_page_is_self_contained_for_a_phone_under_a_strict_policy() -> None:
    html = render(confirm_page(claims(), record(), summary(), both_forms(), now=NOW))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert not re.search(r"""(src|href)\s*=|url\(|@import|<script|<link|style=""", html, re.I)
    assert html.count("<style>") == 1
    style_hash = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"<style>{STYLE}</style>" in html
    assert (f"default-src 'none'; style-src 'sha256-{style_hash}'; form-action 'self'; "
                                       "base-uri 'none'; frame-ancestors 'none'") == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and HEADERS["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "@media (max-width:30rem)" in STYLE and "max-width:44rem" in STYLE


def test_pages_without_a_link_follow_the_browser_language() -> None:
    assert language_of(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh_Hans"
    assert language_of(None, "zh-TW,en;q=0.5") == "en_US"
    assert language_of(None, "") == "en_US"
    assert language_of(claims("en_US"), "zh-CN") == "en_US"
    assert '<html lang="zh-Hans">' in render(message_page(410, "zh_Hans", "此链接无法使用", "…"))


# --------------------------------------------------------------------------- the language setting


def policy_text(extra: str) -> str:
    return "version: '1'\nbase_currency: USD\n" + extra


def test_the_language_comes_from_the_approver_then_the_channel_then_the_policy() -> None:
    policy = Policy.load(policy_text(
        "language: zh\n"
        "channels: {lark: {format: feishu, language: en-US}, ding: {format: dingtalk}}\n"
        "approvers:\n"
        "  manager: [{id: a, channel: lark}, {id: b, channel: ding}, {id: c, channel: lark, language: zh-CN}, {id: d}]\n"
    ))
    assert {p.id: p.language for p in policy.approvers["manager"]} == {"a": "en_US", "b": "zh_Hans", "c": "zh_Hans", "d": "zh_Hans"}
    assert policy.language == "zh_Hans" and policy.channels["lark"].language == "en_US"
    assert policy.canonical()["language"] == "zh_Hans"


def test_a_policy_without_languages_hashes_as_before() -> None:
    text = policy_text("channels: {lark: {format: feishu}}\napprovers: {manager: [{id: a, channel: lark}]}\n")
    canonical = Policy.load(text).canonical()
    assert "language" not in canonical and "language" not in canonical["channels"]["lark"]
    assert "language" not in canonical["approvers"]["manager"][0]


@pytest.mark.parametrize(
    ("extra", "where"),
    [("language: fr\n", "policy: 'language'"),
     ("channels: {lark: {format: feishu, language: klingon}}\n", "channel 'lark': 'language'"),
     ("approvers: {manager: [{id: a, language: 7}]}\n", "approvers 'manager' 'a': 'language'")],
)
def test_an_unknown_language_is_refused_with_what_to_write(extra: str, where: str) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.load(policy_text(extra))
    assert str(caught.value).startswith(where) and "en_US, zh_Hans" in str(caught.value)


# --------------------------------------------------------------------------- the link fields


def test_a_link_carries_language_sla_and_its_siblings_nonce_and_the_sibling_is_the_notifications_other_link() -> None:
    approver = Approver(id="lin.wei", level="director", channel="lark", language="zh_Hans")
    urls = issue_links(request_id="PR-7", version=1, approver=approver, expires_at=int(NOW + 3600), link_secret=SECRET,
                       endpoint_url="https://dify.example.com/e/abc/approval", nonces={"approve": "na", "reject": "nr"},
                       scope="wTESTSCOPE", sla_deadline=int(NOW + 1800))
    approve_token = urls["approve"].split("t=", 1)[1]
    reject_token = urls["reject"].split("t=", 1)[1]
    approve = verify_link(approve_token, SECRET, NOW)
    assert (approve.language, approve.sla_deadline, approve.nonce, approve.other_nonce) == ("zh_Hans", int(NOW + 1800), "na", "nr")
    sibling = approve.sibling()
    assert sibling is not None and sibling.event == "reject" and sibling.sibling() == approve
    # Signed again by the endpoint, the sibling is byte for byte the reject link the approver received:
    # the page adds no third link.
    assert sign_link(sibling, SECRET) == reject_token


def test_links_without_the_new_fields_verify_as_before() -> None:
    old = LinkClaims(request_id="PR-7", version=1, event="approve", approver_id="x", level="manager", expires_at=int(NOW + 60),
                     nonce="n", scope="wS")
    assert set(old.to_payload()) == {"k", "w", "r", "v", "e", "a", "l", "x", "n"}
    back = verify_link(sign_link(old, SECRET), SECRET, NOW)
    assert back == old and back.sibling() is None and back.language == ""


def test_a_signed_link_with_an_unknown_language_is_refused() -> None:
    with pytest.raises(LinkError):
        verify_link(sign_link(claims(language="fr"), SECRET), SECRET, NOW)


def test_render_is_fast_enough_for_an_endpoint() -> None:
    start = time.perf_counter()
    for _ in range(200):
        render(confirm_page(claims(), record(), summary(summary="x" * 500), both_forms(), now=NOW))
    assert (time.perf_counter() - start) / 200 < 0.005
