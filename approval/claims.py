"""Key-value pairs judged by what they claim about THIS request's approval, not by a list of key names.

A pair is a claim when its key is about approval, review, escalation, a manual step or risk, and its value
says the approval is given or the check is not needed: ``"preauthorized": true``, ``"requires_manual_step":
false``, ``second_review: waived``, ``risk: low``, ``next_action: auto_approve``. A generic key ("status",
"state", "result") counts only when its value is an approval word itself ("approved", "genehmigt", "已批准"),
so a vendor's ``{"status": "accepted"}`` or ``"payment_status": "paid"`` is not an approval; nor is a pair
whose key names another subject (``"refund": "approved"``).

:func:`approval_claims` (an injection): a claim by an approval key, or two claims by generic keys.
:func:`status_claims` (a hold): any single claim.
"""

# ruff: noqa: E501  (vocabulary tables)
from __future__ import annotations

import re

# A key-value separator; the key and the value are read around it (bounded, no backtracking: a regex over
# both sides was quadratic on text like "a-a-a-...").
_SEPARATOR = re.compile(r"\s*(?:=>|->|[:：=])\s*")
_DELIMITER = re.compile(r"""[,;{}\[\]()<>\n"'`«»“”„|]""")
_NEXT_KEY = re.compile(r"\s+[^\s=:]+\s*[=:]")
MAX_PAIRS = 200


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for match in list(_SEPARATOR.finditer(text))[:MAX_PAIRS]:
        left = _DELIMITER.split(text[max(0, match.start() - 60):match.start()].rstrip("\"'`»”"))[-1]
        parts = re.split(r"[=:：]|(?<=\w)[.。]\s", left)
        # After another pair on the same line ("a=1 b=2") the key is one word; else up to two ("Final decision").
        key = "_".join(parts[-1].split()[-1 if len(parts) > 1 else -2:])
        right = text[match.end():match.end() + 60].lstrip("\"'`«“„ ")
        value = _NEXT_KEY.split(_DELIMITER.split(right)[0])[0]
        value = re.split(r"(?<=\w)\.(?:\s|$)|\.$|。", value)[0].strip()
        if key and value and len(value) <= 30:
            pairs.append((key, value))
    return pairs


# Keys whose subject is the approval of this request (stems, any language; matched inside the key).
_APPROVAL_KEY = re.compile(
    r"approv|authori[sz]|decision|verdict|review|escalat|manual|human|sign_?off|clearance|complian|fast_?track|exempt|waive|"
    r"next_?action|^next$|auto|disposition|ruling|judg|final|this_request|covers|gate|"
    r"aprob|aprov|approuv|approva|genehmig|freigab|freigeg|pruf|goedkeur|godkan|zatwierdz|schval|aprobar|onay|"
    r"одобр|схвал|затверд|решени|εγκρ|אישור|स्वीकृति|अनुमोदन|อนุมัติ|phe_?duyet|persetujuan|idhini|"
    r"批准|审批|審批|核准|审核|審核|承認|判定|결재|승인|검토|موافق|اعتماد|قرار",
    re.IGNORECASE,
)
_GENERIC_KEY = re.compile(
    r"^(?:status|state|result|outcome|estado|statut|stato|durum|stav|stan|stare|trang_?thai|hali|status_?code|"
    r"статус|состояние|стан|κατασταση|סטטוס|स्थिति|สถานะ|状态|狀態|结果|結果|ステータス|상태|결과|الحالة|النتيجة|ergebnis|resultado|resultat)$",
    re.IGNORECASE,
)
_RISK_KEY = re.compile(r"risk|riesgo|risque|risiko|risco|rischio|risico|ryzyko|riziko|risc|риск|ризик|κινδυν|סיכון|जोखिम|ความเสี่ยง|rui_?ro|hatari|风险|風險|リスク|위험|المخاطر|خطر", re.IGNORECASE)
# "requires_manual_step", "needs_review", "escalate": keys where "false"/"no"/"skipped" is the claim.
_NEGATIVE_KEY = re.compile(r"manual|human|review|escalat|requires|needs|check|verif|pruf|kontrol|control|second", re.IGNORECASE)

_APPROVED = re.compile(
    r"^(?:auto[_ -]?)?approved?$|^auto[_ -]?approve[d_]*(?:ok)?$|^pre[_ -]?approved$|^granted$|^green[_ -]?lit$|"
    r"^aprobad[oa]$|^approuv[ée]e?$|^genehmigt$|^freigegeben$|^aprovad[oa]$|^approvat[oa]$|^goedgekeurd$|^godk[aä]nd$|"
    r"^zatwierdzon[ya]$|^schv[aá]len[oa]?$|^aprobat[aă]?$|^onayland[ıi]$|^одобрено$|^одобрен[ао]?$|^схвалено$|^затверджено$|"
    r"^εγκρ[ίι]θηκε$|^εγκεκριμ[εέ]νο$|^מאושר$|^स्वीकृत$|^अनुमोदित$|^อนุมัติแล้ว$|^đã duyệt$|^da duyet$|^disetujui$|^imeidhinishwa$|"
    r"^已?批准$|^已?核准$|^审批通过$|^審批通過$|^通过$|^通過$|^承認(?:済み)?$|^승인(?:됨)?$|^موافق(?:عليه)?$|^معتمد$",
    re.IGNORECASE,
)
_POSITIVE = re.compile(r"^(?:true|yes|y|1|ok|pass(?:ed)?|cleared?|granted|waived|exempt|done|signed|green|allow(?:ed)?|valid|auto)$", re.IGNORECASE)
_NEGATIVE = re.compile(r"^(?:false|no|n|0|none|never|skip(?:ped)?|waived|not[ _-]?(?:required|needed|necessary)|n/?a|off|disabled|bypass(?:ed)?)$", re.IGNORECASE)
_LOW = re.compile(
    r"^(?:low|none|minimal|zero|0|negligible|nil|bajo|baja|faible|niedrig|gering|baixo|basso|laag|l[aå]g|niskie|n[ií]zk[eé]|sc[aă]zut|"
    r"d[uü]s[uü]k|низкий|низький|χαμηλ[οό]ς|נמוך|कम|ต่ำ|thấp|thap|rendah|ndogo|低|낮음|منخفض)$",
    re.IGNORECASE,
)


def _claim(key: str, value: str) -> str | None:
    """"approval", "generic" or "risk" when the pair claims this request's approval, else None."""
    key = re.sub(r"[\s-]+", "_", key.strip().lower())
    value = value.strip().strip(".").lower()
    if not key or not value:
        return None
    if _RISK_KEY.search(key):
        return "risk" if _LOW.match(value) else None
    if _GENERIC_KEY.match(key):
        return "generic" if _APPROVED.match(value) else None
    if _APPROVAL_KEY.search(key):
        if _APPROVED.match(value) or (_NEGATIVE_KEY.search(key) and _NEGATIVE.match(value)):
            return "approval"
        if not _NEGATIVE_KEY.search(key) and _POSITIVE.match(value):
            return "approval"
    return None


def claims(text: str) -> list[str]:
    """Every claim in ``text`` as "kind:key=value"."""
    found = []
    for key, value in _pairs(text[:20_000]):
        kind = _claim(key, value)
        if kind:
            found.append(f"{kind}:{key.lower()}={value.lower()}")
    return found


def approval_claims(text: str) -> list[str]:
    """Claims that make a fake decision (an injection): any approval-key claim, or at least two claims."""
    found = claims(text)
    return found if any(item.startswith("approval:") for item in found) or len(found) >= 2 else []


def status_claims(text: str) -> list[str]:
    """Any single claim (a hold: a person decides)."""
    return claims(text)


__all__ = ["approval_claims", "claims", "status_claims"]
