"""The page an approval link opens: what is asked, by whom, how much, the risk and the rules that matched, and
the two decisions, in the approver's language.

Pure rendering: ``endpoints/approval.py`` verifies the link, reads the record, the summary the route stored
with it (``RedisApprovalStore.get_summary``) and the link's use, then hands them here. Nothing here reads
or writes a store, and nothing here decides: a GET shows forms, only their POST decides (once).

The page is self-contained (one inline style, no script, no image, no external asset) and its Content
Security Policy allows exactly that style (by its hash), forms posting back to the endpoint and nothing
else. Every value from the request, the record or the link is HTML-escaped. Times are shown in UTC, with
the zone written out and how far away they are ("in 23 h"), which needs no zone at all.

Languages: ``approval.approvers.LANGUAGES`` (en_US, zh_Hans), from the link (the approver's policy setting);
a page without a link to read it from (a damaged link) follows the browser's Accept-Language.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from approval.approvers import LANGUAGES
from approval.levels import TERMINAL_STATES
from approval.links import TOKEN_PARAM, LinkClaims
from approval.policy import money
from approval.transitions import ApprovalRecord

ENGLISH = "en_US"
CHINESE = "zh_Hans"
# The request text shown: the route stores at most this much (tools.approval_notify.SUMMARY_CHARS).
TEXT_CHARS = 500

TEXT: dict[str, dict[str, str]] = {
    ENGLISH: {
        "html_lang": "en",
        "eyebrow": "Approval request",
        "confirm_heading": "Approve or reject?",
        "confirm_lead": "Nothing has been decided yet. Each button decides once.",
        "only_one": "To {other}, use the {other_verb} link in the notification.",
        "approve": "Approve",
        "reject": "Reject",
        "approved_heading": "Approved",
        "rejected_heading": "Rejected",
        "applied_lead": "You {verb_past} this request.",
        "approve_past": "approved",
        "reject_past": "rejected",
        "used_heading": "This link was already used",
        "used_lead": "Each link works once. Nothing changed now.",
        "refused_heading": "Refused, nothing changed",
        "closed_heading": "Nothing left to decide",
        "terminal_lead": "The request is already {state}.",
        "changed_heading": "This link no longer applies",
        "changed_lead": "The request changed after this link was sent (version {sent}, now {now}, {state}).",
        "unknown_heading": "Unknown request",
        "unknown_lead": "No approval request {request_id} is in the approval store.",
        "unavailable_heading": "Not applied",
        "link_heading": "This link cannot be used",
        "link_lead": "Refused, nothing changed: {reason}.",
        "error_heading": "Something went wrong",
        "requester": "Requester",
        "amount": "Amount",
        "type": "Type",
        "department": "Department",
        "risk": "Risk",
        "rules": "Matched rules",
        "no_rules": "none",
        "sla": "SLA deadline",
        "deadline": "Decision needed by",
        "link_valid": "Link valid until",
        "state": "State",
        "state_value": "{state}, needs {level}",
        "you": "You",
        "you_value": "{approver} ({level})",
        "request_text": "Request",
        "shortened": " (first {n} characters)",
        "no_summary": "The approval store holds no summary of this request; see the notification for its details.",
        "first_use": "First use",
        "reason": "Reason",
        "sibling_used": "The {verb} link was used already: {what}.",
        "in": "in {span}",
        "ago": "{span} ago",
        "now": "now",
        "relative": " ({span})",
        "colon": ": ",
        "paren_open": " (",
        "paren_close": ")",
        "decided_by": "Decided by",
        "comma": ", ",
        "minutes": "{n} min",
        "hours": "{n} h",
        "days": "{n} d",
        "base": "≈ {amount} (base currency)",
        "request": "Request {request_id}",
        "footer": "Approval links are signed and single-use. Opening this page decides nothing.",
    },
    CHINESE: {
        "html_lang": "zh-Hans",
        "eyebrow": "审批申请",
        "confirm_heading": "批准还是驳回？",
        "confirm_lead": "尚未作出任何决定。每个按钮只能决定一次。",
        "only_one": "如需{other_verb}，请使用通知中的“{other_verb}”链接。",
        "approve": "批准",
        "reject": "驳回",
        "approved_heading": "已批准",
        "rejected_heading": "已驳回",
        "applied_lead": "您已{verb_past}此申请。",
        "approve_past": "批准",
        "reject_past": "驳回",
        "used_heading": "此链接已被使用",
        "used_lead": "每个链接只能使用一次。本次未做任何更改。",
        "refused_heading": "已拒绝执行，未做任何更改",
        "closed_heading": "无需再作决定",
        "terminal_lead": "该申请已是“{state}”状态。",
        "changed_heading": "此链接已不再适用",
        "changed_lead": "此链接发出后申请已变更（发出时版本 {sent}，现为版本 {now}，{state}）。",
        "unknown_heading": "未知的申请",
        "unknown_lead": "审批存储中没有申请 {request_id}。",
        "unavailable_heading": "未能执行",
        "link_heading": "此链接无法使用",
        "link_lead": "已拒绝，未做任何更改：{reason}。",
        "error_heading": "出现错误",
        "requester": "申请人",
        "amount": "金额",
        "type": "类型",
        "department": "部门",
        "risk": "风险",
        "rules": "命中规则",
        "no_rules": "无",
        "sla": "SLA 截止时间",
        "deadline": "需在此前决定",
        "link_valid": "链接有效期至",
        "state": "状态",
        "state_value": "{state}，需{level}审批",
        "you": "您的身份",
        "you_value": "{approver}（{level}）",
        "request_text": "申请内容",
        "shortened": "（前 {n} 个字符）",
        "no_summary": "审批存储中没有此申请的摘要，详情请见通知。",
        "first_use": "首次使用",
        "reason": "原因",
        "sibling_used": "“{verb}”链接已被使用：{what}。",
        "in": "{span}后",
        "ago": "{span}前",
        "now": "现在",
        "relative": "（{span}）",
        "colon": "：",
        "paren_open": "（",
        "paren_close": "）",
        "decided_by": "决定人",
        "comma": "，",
        "minutes": "{n} 分钟",
        "hours": "{n} 小时",
        "days": "{n} 天",
        "base": "≈ {amount}（本位币）",
        "request": "申请 {request_id}",
        "footer": "审批链接经过签名，且只能使用一次。打开此页面不会作出任何决定。",
    },
}
# Words of the approval vocabulary the page shows (states, risk levels, approver levels, outcomes).
WORDS: dict[str, dict[str, str]] = {
    ENGLISH: {
        "under_review": "under review",
        "vp": "VP",
        "applied": "applied",
        "refused": "refused",
        "already_used": "already used",
        "unavailable": "not applied",
        "unknown_request": "unknown request",
        "in_progress": "in progress",
    },
    CHINESE: {
        "pending": "待审批", "under_review": "审核中", "approved": "已批准", "rejected": "已驳回", "escalated": "已升级",
        "expired": "已过期", "cancelled": "已取消",
        "low": "低", "medium": "中", "high": "高",
        "manager": "经理", "director": "总监", "vp": "副总裁", "executive": "高管",
        "applied": "已执行", "refused": "已拒绝", "already_used": "已使用", "unavailable": "未执行",
        "unknown_request": "未知申请", "in_progress": "处理中",
    },
}

STYLE = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#f3f4f6;color:#1f2937;
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",sans-serif}
main{max-width:44rem;margin:0 auto;padding:1.5rem 1rem 2rem}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:.75rem;padding:1.25rem;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.eyebrow{margin:0;color:#6b7280;font-size:.875rem;overflow-wrap:anywhere}
h1{margin:.25rem 0 .5rem;font-size:1.5rem;line-height:1.25}
.lead{margin:0 0 1rem;color:#374151}
.amount{margin:0 0 1rem;font-size:1.75rem;font-weight:650;overflow-wrap:anywhere}
.amount small{display:block;font-size:.95rem;font-weight:400;color:#6b7280}.amount .label{font-size:.875rem}
dl{display:grid;grid-template-columns:minmax(8rem,auto) 1fr;gap:.5rem 1rem;margin:0 0 1rem}
dt{color:#6b7280}
dd{margin:0;overflow-wrap:anywhere}
.muted,.rel{color:#6b7280}.rel{white-space:nowrap}
.badge{display:inline-block;padding:.05rem .55rem;border-radius:999px;font-size:.875rem;font-weight:600}
.risk-low{background:#dcfce7;color:#166534}.risk-medium{background:#fef3c7;color:#92400e}.risk-high{background:#fee2e2;color:#991b1b}
.chip{display:inline-block;margin:0 .3rem .3rem 0;padding:.05rem .5rem;border:1px solid #d1d5db;border-radius:.35rem;
font:.85rem/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;background:#f9fafb}
h2{margin:1rem 0 .4rem;font-size:1rem;color:#374151}
blockquote{margin:0 0 1rem;padding:.75rem 1rem;background:#f9fafb;border-left:4px solid #9ca3af;border-radius:.25rem;
white-space:pre-wrap;overflow-wrap:anywhere}
.actions{position:sticky;bottom:0;display:flex;gap:.75rem;flex-wrap:wrap;margin:1rem -1.25rem 0;padding:.75rem 1.25rem;
background:rgba(255,255,255,.96);border-top:1px solid #e5e7eb;border-radius:0 0 .75rem .75rem}
.actions form{flex:1 1 9rem;margin:0}
button{width:100%;min-height:3rem;font:inherit;font-size:1.1rem;font-weight:600;border:0;border-radius:.5rem;color:#fff;cursor:pointer}
button.approve{background:#15803d}button.reject{background:#b91c1c}
button:focus-visible{outline:3px solid #2563eb;outline-offset:2px}
.note{margin:.5rem 0 0;padding:.6rem .8rem;border-radius:.4rem;background:#eff6ff;color:#1e3a8a}
.note.warn{background:#fef2f2;color:#7f1d1d}
.outcome{margin:0 0 1rem;padding:.75rem 1rem;border-radius:.5rem;font-weight:600}
.outcome{background:#f3f4f6;color:#1f2937}.outcome.approved{background:#dcfce7;color:#14532d}.outcome.rejected{background:#fee2e2;color:#7f1d1d}
footer{margin-top:1rem;color:#6b7280;font-size:.8rem;text-align:center}
@media (max-width:30rem){main{padding:.75rem .5rem 1.5rem}.card{padding:1rem}dl{grid-template-columns:minmax(5.5rem,32%) 1fr;gap:.4rem .75rem}
.actions{margin:1rem -1rem 0;padding:.75rem 1rem}dt{font-size:.875rem}h1{font-size:1.3rem}.amount{font-size:1.5rem}}
"""
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")
# Exactly the page's own style, forms posting back here, nothing else (no script, image, font, frame).
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}


def language_of(claims: LinkClaims | None, accept_language: str = "") -> str:
    """The link's language; without one, the browser's first supported choice; else English."""
    if claims is not None and claims.language in LANGUAGES:
        return claims.language
    for part in (accept_language or "").split(",")[:20]:
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh") and not tag.startswith(("zh-hant", "zh-tw", "zh-hk", "zh-mo")):
            return CHINESE
        if tag.startswith("en"):
            return ENGLISH
    return ENGLISH


class Words:
    """The page's texts in one language."""

    def __init__(self, language: str) -> None:
        self.language = language if language in TEXT else ENGLISH

    def __call__(self, key: str, **values: Any) -> str:
        return TEXT[self.language][key].format(**values)

    def word(self, value: str) -> str:
        """A state, risk, level or outcome in this language (the value itself when it has no translation)."""
        return WORDS[self.language].get(value, value)

    def verb(self, event: str) -> str:
        return self(event) if event in ("approve", "reject") else event

    def span(self, seconds: float) -> str:
        minutes = round(abs(seconds) / 60)
        if minutes < 1:
            return self("now")
        if minutes < 60:
            text = self("minutes", n=minutes)
        elif minutes < 48 * 60:
            text = self("hours", n=round(minutes / 60))
        else:
            text = self("days", n=round(minutes / 1440))
        return self("in", span=text) if seconds > 0 else self("ago", span=text)

    def instant(self, moment: float | datetime | str | None, now: float) -> str:
        """``2026-12-08 04:10 UTC (in 23 h)``; "" when there is no instant."""
        if moment is None or moment == "" or moment == 0:
            return ""
        try:
            if isinstance(moment, str):
                moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
            at = moment if isinstance(moment, datetime) else datetime.fromtimestamp(float(moment), UTC)
        except (ValueError, OverflowError, OSError):
            return str(moment)
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        return f"{at:%Y-%m-%d %H:%M} UTC{self('relative', span=self.span(at.timestamp() - now))}"

    def instant_html(self, moment: float | datetime | str | None, now: float) -> str:
        """``instant`` as HTML, the relative part kept on one line."""
        text = self.instant(moment, now)
        absolute, sep, relative = text.partition(" UTC")
        if not sep:
            return _esc(text)
        gap = " " if relative.startswith(" ") else ""  # English leaves a space (a line may break there); Chinese not
        return f'{_esc(absolute)} UTC{gap}<span class="rel">{_esc(relative.strip())}</span>'


@dataclass(frozen=True)
class DecisionForm:
    """One decision's button: a POST carrying that decision's own single-use link token."""

    event: str
    token: str


@dataclass
class PageModel:
    """What one page shows. ``heading`` and ``lead`` are already in the page's language."""

    status: int
    language: str
    heading: str
    lead: str = ""
    claims: LinkClaims | None = None
    summary: Mapping[str, Any] | None = None
    record: ApprovalRecord | None = None
    forms: Sequence[DecisionForm] = ()
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    banner: str = ""  # what was decided, shown large under the heading
    banner_class: str = ""  # approved / rejected / other: its colour
    extra_rows: list[tuple[str, str]] = field(default_factory=list)
    last_change: Mapping[str, Any] | None = None  # the history entry that decided the request
    now: float = 0.0


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _amount(summary: Mapping[str, Any], words: Words) -> tuple[str, str]:
    """("2,500.00 USD", "≈ 2,700.00 USD (base currency)" or "")."""
    raw = str(summary.get("amount", "")).strip()
    currency = str(summary.get("currency", "")).strip()
    try:
        shown = money(Decimal(raw))
    except (InvalidOperation, ValueError):
        shown = raw
    text = f"{shown} {currency}".strip()
    base = str(summary.get("amount_base", "")).strip()
    base_amount, _, base_currency = base.rpartition(" ")
    if base and base_currency and base_currency != currency:
        with contextlib.suppress(InvalidOperation, ValueError):
            base_amount = money(Decimal(base_amount))
        return text, words("base", amount=f"{base_amount} {base_currency}")
    return text, ""


def _rows(model: PageModel, words: Words) -> list[tuple[str, str]]:
    """(label, value HTML) of the facts, in reading order; rows without a value are left out."""
    s = model.summary or {}
    claims, record = model.claims, model.record
    rows: list[tuple[str, str]] = []
    requester = s.get("requester_id") or (record.requester_id if record else "")
    rows.append((words("requester"), _esc(requester) if requester else ""))
    rows.append((words("type"), _esc(s.get("request_type", ""))))
    rows.append((words("department"), _esc(s.get("department", ""))))
    risk = str(s.get("risk_level", ""))
    if risk:
        rows.append((words("risk"), f'<span class="badge risk-{_esc(risk)}">{_esc(words.word(risk))}</span>'))
    if model.summary is not None:
        rules = [str(rule) for rule in s.get("matched_rules") or []]
        chips = " ".join(f'<span class="chip">{_esc(rule)}</span>' for rule in rules)
        rows.append((words("rules"), chips or f'<span class="muted">{_esc(words("no_rules"))}</span>'))
    open_request = record is None or record.state not in TERMINAL_STATES
    if claims is not None and open_request:  # deadlines matter while there is something to decide
        rows.append((words("sla"), words.instant_html(claims.sla_deadline, model.now)))
    deadline = record.deadline if record is not None and record.deadline is not None else s.get("deadline")
    if open_request:
        rows.append((words("deadline"), words.instant_html(deadline, model.now)))
    if record is not None:
        state = (words("state_value", state=words.word(record.state), level=words.word(record.required_level))
                 if open_request else words.word(record.state))
        rows.append((words("state"), _esc(state)))
    change = model.last_change
    if change and not open_request and change.get("actor_id"):
        level = f"{words('paren_open')}{words.word(str(change['actor_level']))}{words('paren_close')}" if change.get("actor_level") else ""
        rows.append((words("decided_by"), _esc(f"{change['actor_id']}{level}") + (
            f"<br>{words.instant_html(str(change['at']), model.now)}" if change.get("at") else "")))
    if claims is not None:
        rows.append((words("you"), _esc(words("you_value", approver=claims.approver_id, level=words.word(claims.level)))))
        if open_request and not model.banner:
            rows.append((words("link_valid"), words.instant_html(claims.expires_at, model.now)))
    rows.extend(model.extra_rows)
    return [(label, value) for label, value in rows if value]


def render(model: PageModel) -> str:
    """The page as HTML (UTF-8 text)."""
    words = Words(model.language)
    s = model.summary
    request_id = model.claims.request_id if model.claims else (str(s.get("request_id", "")) if s else "")
    parts: list[str] = []
    eyebrow = words("eyebrow") + (f" · {request_id}" if request_id else "")
    parts.append(f'<p class="eyebrow">{_esc(eyebrow)}</p><h1>{_esc(model.heading)}</h1>')
    if model.lead:
        parts.append(f'<p class="lead">{_esc(model.lead)}</p>')
    if model.banner:
        parts.append(f'<p class="outcome {_esc(model.banner_class)}">{_esc(model.banner)}</p>')
    if s is not None and s.get("amount") not in (None, ""):
        amount, base = _amount(s, words)
        parts.append(f'<p class="amount"><small class="label">{_esc(words("amount"))}</small>{_esc(amount)}'
                     + (f"<small>{_esc(base)}</small>" if base else "") + "</p>")
    for note in model.warnings:
        parts.append(f'<p class="note warn">{_esc(note)}</p>')
    # Read, then decide: the facts and the request's text come before the buttons.
    rows = _rows(model, words) if (model.claims is not None or s is not None) else []
    if rows:
        parts.append("<dl>" + "".join(f"<dt>{_esc(label)}</dt><dd>{value}</dd>" for label, value in rows) + "</dl>")
    if s is not None and s.get("summary"):
        text = str(s["summary"])
        parts.append(f'<h2>{_esc(words("request_text"))}<span class="muted">{_esc(words("shortened", n=TEXT_CHARS))}</span></h2>'
                     if len(text) >= TEXT_CHARS else f"<h2>{_esc(words('request_text'))}</h2>")
        parts.append(f"<blockquote>{_esc(text[:TEXT_CHARS + 1])}</blockquote>")
    elif model.claims is not None and model.record is not None and s is None:
        parts.append(f'<p class="note">{_esc(words("no_summary"))}</p>')
    if model.forms:
        parts.append(_actions(model.forms, words))
    for note in model.notes:
        parts.append(f'<p class="note">{_esc(note)}</p>')
    title = f"{model.heading} · {request_id}" if request_id else model.heading
    return (
        f'<!doctype html>\n<html lang="{_esc(words("html_lang"))}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow"><meta name="referrer" content="no-referrer">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head>\n"
        f'<body><main><div class="card">{"".join(parts)}</div><footer>{_esc(words("footer"))}</footer></main></body></html>\n'
    )


def _actions(forms: Iterable[DecisionForm], words: Words) -> str:
    # No action attribute: each form posts to the page's own URL; its hidden token (not the URL's) is the
    # decision, so approve and reject each stay their own single-use link.
    buttons = "".join(
        f'<form method="post"><input type="hidden" name="{TOKEN_PARAM}" value="{_esc(form.token)}">'
        f'<button type="submit" class="{_esc(form.event)}" name="decision" value="{_esc(form.event)}">{_esc(words.verb(form.event))}</button></form>'
        for form in forms
    )
    return f'<div class="actions">{buttons}</div>'


# --------------------------------------------------------------------------- the pages the endpoint shows


def first_use_text(first: Mapping[str, Any] | None, words: Words, now: float = 0.0) -> str:
    """What a link's first use did, e.g. "applied: approved, 2026-12-08 04:10 UTC (3 min ago)"."""
    if not first:
        return words.word("in_progress")
    status = str(first.get("status", "in_progress"))
    # An applied decision is said by the state it led to; anything else by what happened (refused, ...).
    text = words.word(str(first["state"])) if status == "applied" and first.get("state") else words.word(status)
    if first.get("at"):
        text += words("comma") + (words.instant(str(first["at"]), now) if now else str(first["at"]))
    return text


def confirm_page(claims: LinkClaims, record: ApprovalRecord, summary: Mapping[str, Any] | None,
                 forms: Sequence[DecisionForm], *, now: float, sibling_first: Mapping[str, Any] | None = None) -> PageModel:
    """The page of a link that can still decide: the facts and a button per decision still open."""
    words = Words(claims.language)
    model = PageModel(200, words.language, words("confirm_heading"), words("confirm_lead"), claims, summary, record,
                      forms, now=now)
    other = next(event for event in ("approve", "reject") if event != claims.event)
    if sibling_first is not None:
        model.notes.append(words("sibling_used", verb=words.verb(other), what=first_use_text(sibling_first, words, now)))
    elif len(forms) == 1:
        model.notes.append(words("only_one", other=other, other_verb=words.verb(other)))
    return model


def closed_page(claims: LinkClaims, record: ApprovalRecord | None, summary: Mapping[str, Any] | None,
                first: Mapping[str, Any] | None, *, now: float, last_change: Mapping[str, Any] | None = None) -> PageModel:
    """A link that cannot decide any more: used, the request decided (by whom: ``last_change``) or changed,
    or unknown."""
    model = _closed_page(claims, record, summary, first, now=now)
    model.last_change = last_change
    return model


def _closed_page(claims: LinkClaims, record: ApprovalRecord | None, summary: Mapping[str, Any] | None,
                 first: Mapping[str, Any] | None, *, now: float) -> PageModel:
    words = Words(claims.language)
    if first is not None:
        model = PageModel(409, words.language, words("used_heading"), words("used_lead"), claims, summary, record, now=now)
        model.banner = words("first_use") + words("colon") + first_use_text(first, words, now)
        model.banner_class = str(first.get("state")) if first.get("status") == "applied" else "other"
        if first.get("status") == "refused" and first.get("message"):
            model.warnings.append(str(first["message"]))
        return model
    if record is None:  # 409 as every link that cannot be used on a GET; a POST of it answers 404
        return PageModel(409, words.language, words("unknown_heading"), words("unknown_lead", request_id=claims.request_id),
                         claims, now=now)
    if record.state in TERMINAL_STATES:
        return PageModel(409, words.language, words("closed_heading"), words("terminal_lead", state=words.word(record.state)),
                         claims, summary, record, now=now)
    lead = words("changed_lead", sent=claims.version, now=record.version, state=words.word(record.state))
    return PageModel(409, words.language, words("changed_heading"), lead, claims, summary, record, now=now)


def outcome_page(claims: LinkClaims, status: str, http_status: int, message: str, *, record: ApprovalRecord | None,
                 summary: Mapping[str, Any] | None, first: Mapping[str, Any] | None, state: str = "", version: int = 0,
                 now: float, last_change: Mapping[str, Any] | None = None) -> PageModel:
    """After a POST: what the decision did (``approval.decisions.DecisionOutcome``)."""
    words = Words(claims.language)
    if status == "applied":
        heading = words("approved_heading" if claims.event == "approve" else "rejected_heading")
        model = PageModel(http_status, words.language, heading, "", claims, summary, record, now=now)
        model.banner = words("applied_lead", verb_past=words(f"{claims.event}_past"))
        model.banner_class = state if state in ("approved", "rejected") else "other"
        return model
    if status == "already_used":
        return closed_page(claims, record, summary, first or {}, now=now, last_change=last_change)
    if status == "unknown_request":
        return PageModel(http_status, words.language, words("unknown_heading"),
                         words("unknown_lead", request_id=claims.request_id), claims, now=now)
    heading = words("refused_heading" if status == "refused" else "unavailable_heading")
    model = PageModel(http_status, words.language, heading, "", claims, summary, record, now=now, last_change=last_change)
    model.warnings.append(message)  # the state machine's or the store's reason (English: it names fields)
    return model


def message_page(status: int, language: str, heading: str, message: str) -> PageModel:
    """A page without a usable link (settings missing, link damaged or expired, an error)."""
    return PageModel(status, language if language in TEXT else ENGLISH, heading, message)


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "HEADERS",
    "TEXT",
    "DecisionForm",
    "PageModel",
    "Words",
    "closed_page",
    "confirm_page",
    "first_use_text",
    "language_of",
    "message_page",
    "outcome_page",
    "render",
]
