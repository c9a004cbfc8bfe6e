"""Heuristic detection of prompt-injection attempts in request text.

Deliberately narrow: it looks for text that addresses the model or the approval machinery
("ignore previous instructions", "auto-approve this", role tags, forged delimiters, schema field
names...), not for business words, so ordinary requests are not flagged. Text is normalised first:
NFKC, zero-width and other format characters removed, common Cyrillic/Greek look-alikes mapped to
Latin, Latin accents dropped, whitespace collapsed; a compact form (letters only, with leetspeak
digits mapped) catches spaced-out or punctuated spellings of the main phrases.
A hit escalates the request; it never blocks it.
"""

from __future__ import annotations

import re
import unicodedata

# Look-alike letters NFKC leaves alone.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
        "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ı": "i", "ℓ": "l",
        "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c",
        "Т": "t", "Х": "x", "І": "i",
        "α": "a", "ο": "o", "ι": "i", "ε": "e", "ν": "v", "κ": "k", "τ": "t", "ρ": "p", "υ": "u",
        "Α": "a", "Β": "b", "Ε": "e", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p",
        "Τ": "t", "Χ": "x", "Υ": "y", "Ζ": "z",
    }
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})

_F = re.IGNORECASE

_INSTR = r"(?:instructions?|prompts?|directives?|guardrails?|rules|system\s+messages?)"
_STEER = (
    r"(?:you|your|ignore|approve\w*|instruction\w*|override|risk|model|assistant|escalat\w*|must|always|never"
    r"|sure|ok|okay|understood|i\s+will|i'll)"
)
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # "ignore (all) previous instructions", "forget your rules", "override the system prompt"
    ("ignore_instructions", re.compile(
        rf"\b(?:ignore|forget|override|bypass)\b(?:\s+\S+){{0,4}}?\s+{_INSTR}\b", _F)),
    ("ignore_instructions", re.compile(
        r"\b(?:ignore|forget)\s+(?:all|everything|anything)\s+(?:previous|prior|above|earlier|preceding|before|said)\b"
        r"|\b(?:ignore|forget)\s+(?:the\s+|all\s+the\s+)?above\s*[.,;:!]?\s*(?:$|and\b|then\b)", _F | re.MULTILINE)),
    ("disregard_instructions", re.compile(
        rf"\bdisregard\b(?:\s+\S+){{0,4}}?\s+(?:{_INSTR}|guidelines)\b", _F)),
    # "ignore your guidelines", "forget the approval policy", "bypass all rules": the request addressing
    # the rules that judge it ("your", "the approval ...", "all/any/previous ..."), not any policy it mentions.
    ("ignore_instructions", re.compile(
        r"\b(?:ignore|forget|disregard|bypass|override)\s+(?:all\s+(?:of\s+)?)?"
        r"(?:your|the\s+(?:approval|routing|company|delegation|spending|review)|any|all|previous|prior|earlier|above)"
        r"\s+(?:\S+\s+){0,2}?(?:guidelines?|guidance|rules|polic(?:y|ies)|checks|controls)\b", _F)),
    ("disregard_instructions", re.compile(
        r"\bdisregard\s+(?:all|everything|anything)\s+(?:previous|prior|above|earlier|preceding|before|said)\b"
        r"|\bdisregard\s+(?:the\s+|all\s+the\s+)?above\s*[.,;:!]?\s*(?:$|and\b|then\b)", _F | re.MULTILINE)),
    # "auto-approve", "approve this automatically", "approve without review"
    ("auto_approve_request", re.compile(r"\bauto[\s\-_.]*approv", _F)),
    ("auto_approve_request", re.compile(
        r"\bapprov\w*\s+(?:this|it|me|the\s+request|this\s+request|my\s+request)?\s*(?:automatically|"
        r"immediately\s+without|without\s+(?:any\s+)?(?:review|checks?|escalat\w*))", _F)),
    ("auto_approve_request", re.compile(r"\bautomatically\s+approv", _F)),
    # role changes
    ("role_override", re.compile(
        r"\byou\s+are\s+(?:now|no\s+longer)\s+(?:a|an|the|my|acting|operating|free|unrestricted|dan|\w+\s+mode)\b",
        _F)),
    ("role_override", re.compile(r"\bfrom\s+now\s+on,?\s+you\b", _F)),
    ("role_override", re.compile(r"\bpretend\s+(?:to\s+be|you\s+are|that\s+you)\b", _F)),
    ("role_override", re.compile(r"\byou\s+(?:will\s+|must\s+|should\s+|shall\s+)?(?:now\s+)?(?:act|behave|respond)\s+as\b",
                                 _F)),
    ("role_override", re.compile(r"\b(?:jailbreak\w*|dan\s+mode)\b", _F)),
    ("system_prompt", re.compile(r"\bsystem\s*prompt\b", _F)),
    ("system_prompt", re.compile(r"\b(?:developer|system)\s+(?:message|instructions?)\b", _F)),
    ("system_prompt", re.compile(r"\b(?:reveal|print|show|repeat)\s+(?:me\s+)?(?:your|the)\s+(?:instructions|prompt)\b",
                                 _F)),
    # chat-template and role tags ("System: you must ...", "<|im_start|>system", "[INST]")
    ("role_tag", re.compile(
        rf"^\s*(?:[#>*\[\(]+\s*)?(?:system|assistant|developer)\s*[\]\)]?\s*[:：](?=.*\b{_STEER}\b)",
        _F | re.MULTILINE)),
    ("role_tag", re.compile(r"<\|[a-z_]+\|>|\[/?inst\]|<</?sys>>|</?(?:system|assistant|developer)>|"
                            r"^\s*#{2,}\s*(?:system|instructions?)\b", _F | re.MULTILINE)),
    # steering the outcome
    ("set_risk", re.compile(
        r"\b(?:set|change|mark|make|classify|rate|lower|downgrade|put)\s+(?:the\s+|this\s+|its\s+|my\s+)?"
        r"risk(?:\s*level)?\s*(?:to|as|at|=|:)?\s*(?:be\s+)?(?:low|none|minimal|zero)\b", _F)),
    ("set_risk", re.compile(
        r"\brisk\s*(?:level)?\s*(?:=|should\s+be|must\s+be|is\s+to\s+be)\s*[\"']?(?:low|none|zero)\b", _F)),
    # "mark this as low risk", "treat it as low-risk": imperatives only, so "rated as low risk last
    # year" or "low risk of delay" stay unflagged
    ("set_risk", re.compile(
        r"(?:^|[.!;:,(\-]\s*|\b(?:please|kindly|just|and|so|then|you|should|must|can|to)\s+)"
        r"(?:mark|treat|classify|flag|rate|label|tag|score|categori[sz]e|handle|process)"
        r"(?:\s+(?:this|it|me|this\s+one|the\s+request|this\s+request|my\s+request))?"
        r"\s+as\s+(?:an?\s+)?(?:very\s+)?(?:low|no|zero|minimal)[\s-]+risk\b", _F | re.MULTILINE)),
    ("schema_field", re.compile(r"\b(?:approver_level|auto_approve_ok|risk_level|injection_suspected)\b", _F)),
    ("schema_field", re.compile(r"\bapprover[\s_]*level\s*[:=]", _F)),
    ("do_not_escalate", re.compile(
        r"\b(?:do\s*not|don'?t|dont|never|must\s+not|should\s+not|no\s+need\s+to)\s+(?:escalate|flag)\b", _F)),
    ("do_not_escalate", re.compile(r"\bwithout\s+(?:any\s+)?(?:human\s+)?(?:review|escalat\w*|oversight)\b", _F)),
    # "skip escalation", "skip the review" (but not "skip the review meeting")
    ("do_not_escalate", re.compile(
        r"\bskip(?:ping)?\s+(?:the\s+|any\s+|all\s+)?(?:escalat\w*|(?:human\s+|manual\s+)?review(?:s|\s+step)?\b"
        r"(?!\s+(?:meeting|call|session|slides?|deck|document|notes)\b)|approval\s+(?:chain|steps?|process))", _F)),
    # "no review needed", "no escalation required", "no need for review"
    ("do_not_escalate", re.compile(
        r"\bno\s+(?:further\s+|additional\s+|human\s+|manual\s+)?(?:review|escalation|oversight)\s+"
        r"(?:is\s+)?(?:needed|required|necessary)\b"
        r"|\bno\s+need\s+(?:for|of)\s+(?:a\s+|any\s+)?(?:review|escalation|oversight)\b", _F)),
    # closing or forging the data delimiters
    ("delimiter_forgery", re.compile(
        r"(?:<<<|‹‹‹|«««)\s*/?\s*(?:end|request|system|data|input)\b|\b(?:end|request)\b[^\n<>]{0,40}(?:>>>|›››|»»»)", _F)),
    ("delimiter_forgery", re.compile(
        r"\b(?:end\s+of\s+(?:the\s+)?(?:request|data|input|user\s+input)|end[_\s]+request)\b", _F)),
    ("delimiter_forgery", re.compile(r"</\s*(?:request|data|input|user|context|document)\s*>", _F)),
    ("addressing_model", re.compile(
        r"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+)?(?:ai|llm|gpt|chatgpt|assistant|model|bot|"
        r"language\s+model)\b", _F)),
    ("addressing_model", re.compile(r"\bnew\s+instructions?\s*[:：]", _F)),
    # non-English variants
    ("ignore_instructions", re.compile(r"(?:忽略|无视|無視|忘记|忘記|不要理会)[^。\n]{0,8}(?:指令|指示|规则|規則|提示|命令)")),
    ("ignore_instructions", re.compile(r"(?:以前|前|上記|上)の(?:指示|命令|ルール)を(?:無視|忘れ)")),
    ("ignore_instructions", re.compile(
        r"\b(?:ignora|ignorar|ignore[sz]?|ignorer|ignoriere|ignorieren|vergiss|oublie[rz]?)\b(?:\s+\S+){0,3}?\s+"
        r"(?:instrucciones|instructions|anweisungen|regeln|consignes|istruzioni)\b", _F)),
    ("auto_approve_request", re.compile(r"自动(?:批准|审批|通过|核准)|自動(?:批准|審批|承認|通過|核准)|直接批准|无需审批|無需審批")),
    ("auto_approve_request", re.compile(
        r"\b(?:aprobar|aprueba|aprobad|approuve[rz]?|genehmige|genehmigen|approva(?:re)?)\s+(?:\S+\s+)?"
        r"(?:automaticamente|automatiquement|automatisch|automaticamente)\b", _F)),
    ("auto_approve_request", re.compile(r"\bautomatisch\s+genehmig", _F)),
    # French: "ne tenez pas compte des instructions precedentes" (accents are dropped by normalize)
    ("ignore_instructions", re.compile(
        r"\bne\s+(?:tenez|tiens|tenir)\s+pas\s+compte\s+(?:des|de\s+vos|de\s+tes)\s+(?:\S+\s+)?"
        r"(?:instructions|consignes|regles)\b", _F)),
    ("role_override", re.compile(r"你现在是|你現在是|从现在开始你|從現在開始你|あなたは今")),
    ("system_prompt", re.compile(r"系统提示|系統提示|システムプロンプト")),
    ("set_risk", re.compile(r"风险(?:等级|级别)?(?:设为|设置为|改为|定为)低|風險(?:等級|級別)?(?:設為|設置為|改為|定為)低")),
    ("do_not_escalate", re.compile(r"不要(?:升级|上报|升級|上報)|无需上报|無需上報")),
)

# Letters-only spellings of the main phrases ("i.g.n.o.r.e p-r-e-v-i-o-u-s", "4ut0-appr0ve").
_COMPACT: tuple[tuple[str, str], ...] = (
    ("ignorepreviousinstructions", "ignore_instructions"),
    ("ignoreallpreviousinstructions", "ignore_instructions"),
    ("ignorepriorinstructions", "ignore_instructions"),
    ("ignoreaboveinstructions", "ignore_instructions"),
    ("ignoreallinstructions", "ignore_instructions"),
    ("ignoreyourinstructions", "ignore_instructions"),
    ("disregardpreviousinstructions", "disregard_instructions"),
    ("disregardallprevious", "disregard_instructions"),
    ("disregardallinstructions", "disregard_instructions"),
    ("autoapprove", "auto_approve_request"),
    ("approvethisautomatically", "auto_approve_request"),
    ("donotescalate", "do_not_escalate"),
    ("setrisktolow", "set_risk"),
    ("markthisaslowrisk", "set_risk"),
    ("treatthisaslowrisk", "set_risk"),
    ("skipescalation", "do_not_escalate"),
    ("ignoreyourguidelines", "ignore_instructions"),
    ("ignoreyourrules", "ignore_instructions"),
    ("ignoreyourpolicy", "ignore_instructions"),
    ("ignorerlesinstructionsprecedentes", "ignore_instructions"),
    ("setrisklevelto low".replace(" ", ""), "set_risk"),
)


def _strip_latin_accents(text: str) -> str:
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", text):
        if unicodedata.category(char) == "Mn" and out and out[-1].isascii():
            continue
        out.append(char)
    return unicodedata.normalize("NFC", "".join(out))


def normalize(text: str) -> str:
    """The form the patterns run on: NFKC, no format chars, look-alikes mapped, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(char for char in text if unicodedata.category(char) != "Cf")
    text = text.translate(_CONFUSABLES)
    text = _strip_latin_accents(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[^\S\n]+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(lines).lower()


def _compact(normalized: str) -> str:
    return "".join(char for char in normalized.translate(_LEET) if char.isalnum())


def detect_injection(text: str) -> list[str]:
    """Names of the injection signals found in ``text`` (sorted, unique); empty when none."""
    if not text:
        return []
    normalized = normalize(text)
    found = {name for name, pattern in _PATTERNS if pattern.search(normalized)}
    compact = _compact(normalized)
    found.update(name for phrase, name in _COMPACT if phrase in compact)
    return sorted(found)


__all__ = ["detect_injection", "normalize"]
