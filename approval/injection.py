"""Deterministic screen of request text for prompt injection: it holds when both model calls are fooled.

What it reads: the text as the models get it (approval.hidden: TAG characters and smuggled bytes shown,
invisible characters removed), normalised (NFKC, UTS #39 look-alikes folded, Latin accents dropped), plus
what is hidden in it: encodings decoded (approval.decoders, bounded in size and depth), the text read
backwards, rotated or spelled out (views), and hidden places judged on their own (approval.places).

What it looks for: text that addresses or pressures the approval process, not business words. Phrase
patterns (this module, English and eleven more languages), concepts combined per sentence in 26 languages
(approval.concepts: "approve" + "without a check", "whatever evaluates this" + an outcome, ...), and
key-value pairs judged by what they claim about this request's approval (approval.claims).

Two strengths: a *signal* escalates the request (injection suspected); a *hold* only keeps it from the
automatic path, for text that pressures the process without a full instruction (an outcome claimed as
settled, "no need for a check", a generic status "approved", readable text inside an encoding, approval
talk inside a hidden place). Mentions of approval, review, AI, renewal or encodings alone are neither.
"""

# ruff: noqa: E501  (pattern tables: one pattern a line reads better than split strings)
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from approval.claims import approval_claims, status_claims
from approval.concepts import concept_signals, plain, sentence_concepts
from approval.confusables import fold_to_latin
from approval.decoders import MAX_DECODE_DEPTH, decoded_payloads, views
from approval.hidden import reveal
from approval.places import hidden_places

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



# --- beyond English: instructions to the reviewer in other languages (accents already dropped) -------
_ML: tuple[tuple[str, str], ...] = (
    # Spanish
    ("auto_approve_request", r"\b(?:apru[e]?bal[ao]s?|apru[e]?be(?:la|lo)?|aprobar(?:la|lo)?|aprueben(?:la|lo)?|apruebalo)\b"
     r"[^.\n]{0,40}\b(?:sin\s+(?:revision|aprobacion|intervencion|supervision|control|verificacion|escalar)"
     r"|automaticamente|directamente|de\s+inmediato)"),
    ("auto_approve_request", r"\baprobacion\s+automatica\b|\bsin\s+(?:revision|intervencion|supervision)\s+humana\b"),
    ("set_risk", r"\b(?:clasif[i]ca(?:la|lo|r)?|marca(?:la|lo|r)?|considera(?:la|lo)?|trata(?:la|lo)?|evalua(?:la|lo)?|asigna(?:le)?|pon(?:le)?)"
     r"\b[^.\n]{0,30}\b(?:riesgo\s+(?:bajo|minimo|nulo)|bajo\s+riesgo)"),
    ("do_not_escalate", r"\bno\s+(?:la\s+|lo\s+)?(?:escales|escalar|escalen)\b|\bsin\s+escalar\b"),
    ("ignore_instructions", r"\b(?:ignora|ignore|ignoren|olvida|olvide)\b[^.\n]{0,30}\b(?:instrucciones|reglas|indicaciones|politicas?)\b"),
    ("addressing_model", r"\b(?:estimad[oa]|querid[oa]|atencion|hola)\s*,?\s+(?:sistema|revisor|modelo|asistente|ia|evaluador)\b"),
    ("reply_verdict", r"\b(?:responde|responda|contesta|conteste|di|diga|indica|indique)\b[^.\n]{0,30}\b(?:aprobad[oa]|riesgo\s+bajo|bajo\s+riesgo|que\s+no\s+(?:hace\s+falta|se\s+necesita))"),
    # French
    ("auto_approve_request", r"\b(?:approuve[rz]?|valide[rz]?|accepte[rz]?)(?:[\s-]+(?:la|le|les))?\b[^.\n]{0,40}\b(?:sans\s+(?:revision|validation|controle|verification|intervention|examen|relecture|escalade)|automatiquement|directement)"),
    ("auto_approve_request", r"\bapprobation\s+automatique\b|\bsans\s+(?:revision|validation|controle|intervention|verification|examen)\s+humaine?\b"),
    ("set_risk", r"\b(?:classez|marquez|considerez|traitez|evaluez|notez|(?:classe|marque|considere|traite|evalue|note)-(?:la|le|les))\b[^.\n]{0,30}\b(?:risque\s+(?:faible|bas|minimal|nul)|faible\s+risque)"),
    ("do_not_escalate", r"\bne\s+(?:l'|la\s+|le\s+)?(?:escalade[rz]?|transmet(?:s|tez)?)\s+pas\b|\bne\s+pas\s+escalader\b|\bsans\s+escalade\b"),
    ("ignore_instructions", r"\b(?:ignore[rz]?|oublie[rz]?)\b[^.\n]{0,30}\b(?:instructions|consignes|regles)\b"),
    ("addressing_model", r"\b(?:cher|chere|a\s+l'attention\s+du|bonjour)\s+(?:systeme|relecteur|evaluateur|modele|assistant|ia|robot)\b"),
    ("reply_verdict", r"\b(?:repond(?:s|ez)|reponds|indique[rz]?|dites|dis)\b[^.\n]{0,20}\bque\b[^.\n]{0,40}\b(?:approuve|aucun\s+humain|risque\s+faible|pas\s+besoin)"),
    ("do_not_escalate", r"\baucun\s+humain\b[^.\n]{0,30}\b(?:voir|verifier|examiner|valider|intervenir)"),
    # German (umlauts become a/o/u)
    ("auto_approve_request", r"\bohne\s+(?:menschliche|manuelle|weitere)\s+(?:prufung|pruefung|freigabe|kontrolle|uberprufung|genehmigung|sichtung)\b"),
    ("auto_approve_request", r"\b(?:automatisch|direkt|sofort)\s+(?:genehmig|freigeb|freigab|durchwink)"),
    ("auto_approve_request", r"\b(?:genehmige|genehmigen\s+sie|gib|geben\s+sie)\b[^.\n]{0,40}\b(?:frei|ohne\s+prufung|automatisch)\b"),
    ("set_risk", r"\b(?:stufe|stufen\s+sie|bewerte|bewerten\s+sie|markiere|markieren\s+sie|klassifiziere|einstufen|einzustufen)\b[^.\n]{0,40}\b(?:niedrig|gering)"),
    ("set_risk", r"\b(?:als|mit)\s+(?:niedrige[sm]?|geringe[sm]?)\s+risiko\s+(?:einstufen|einzustufen|bewerten|markieren|behandeln)"),
    ("do_not_escalate", r"\bnicht\s+eskalier|\bkeine\s+eskalation\b"),
    ("ignore_instructions", r"\b(?:ignoriere|ignorieren|vergiss|vergessen)\b[^.\n]{0,30}\b(?:anweisungen|regeln|vorgaben|richtlinien)\b"),
    ("addressing_model", r"\b(?:liebes?|sehr\s+geehrtes?|hallo|an\s+das)\s+(?:prufsystem|pruefsystem|system|ki|modell|genehmigungssystem|freigabesystem|bot)\b"),
    ("reply_verdict", r"\b(?:antworte|antworten\s+sie|gib\s+zuruck|melde)\b[^.\n]{0,30}\b(?:genehmigt|freigegeben|niedrig|kein\s+mensch)"),
    ("do_not_escalate", r"\bkein\s+mensch\b[^.\n]{0,30}\b(?:prufen|sehen|ansehen|freigeben)"),
    # Portuguese (and Italian)
    ("auto_approve_request", r"\b(?:aprove(?:-a|-o)?|aprovar|aprova(?:-la|-lo)?|aprovem|approva(?:la|lo|re)?)\b[^.\n]{0,40}\b(?:sem\s+(?:revisao|aprovacao|analise|intervencao|escalar)|senza\s+(?:revisione|controllo)|automaticamente|diretamente|direttamente)"),
    ("auto_approve_request", r"\baprovacao\s+automatica\b|\bsem\s+(?:revisao|analise|intervencao)\s+humana\b|\bapprovazione\s+automatica\b"),
    ("set_risk", r"\b(?:classifique|marque|considere|trate|avalie|classifica|segna)(?:-a|-o|la|lo)?\b[^.\n]{0,30}\b(?:risco\s+baixo|baixo\s+risco|rischio\s+basso|basso\s+rischio)"),
    ("do_not_escalate", r"\bnao\s+(?:escale|escalar|encaminhe|encaminhar)\b|\bnon\s+escalare\b"),
    ("ignore_instructions", r"\b(?:ignore|ignora|ignorar|esqueca|dimentica)\b[^.\n]{0,30}\b(?:instrucoes|regras|istruzioni|regole)\b"),
    ("addressing_model", r"\b(?:caro|cara|prezad[oa])\s+(?:sistema|revisor|avaliador|modelo|assistente|ia|revisore)\b"),
    ("reply_verdict", r"\b(?:responda|diga|informe|rispondi)\b[^.\n]{0,20}\b(?:que|che)\b[^.\n]{0,40}\b(?:aprovad[oa]|approvat[oa]|risco\s+baixo|nenhum\s+humano)"),
    # English paraphrases that address the reviewer or claim a waiver
    ("addressing_model", r"\b(?:dear|hello|hi|hey|attention|attn|to)\s*,?\s+(?:the\s+)?(?:reviewing|review|approval|automated|ai|llm|screening|routing)\s+"
     r"(?:system|bot|engine|agent|model|assistant|reviewer|process|pipeline|tool)\b"),
    ("addressing_model", r"\b(?:dear|hello|hi|hey|attention|attn)\s*,?\s+(?:ai|llm|gpt|chatgpt|claude|assistant|model|bot|reviewer|system)\b"),
    ("addressing_model", r"\b(?:ai|llm|automated|automatic)\s+(?:reviewer|review(?:er)?\s+note|assessor|approver|screener)\b"),
    ("addressing_model", r"\bif\s+you\s+are\s+(?:an?\s+)?(?:ai|llm|language\s+model|automated|model|bot|assistant|reviewer)\b"),
    ("addressing_model", r"\b(?:to|for)\s+(?:whoever|whatever|any)\s+(?:system|model|ai|bot|tool|agent)\b"),
    ("reply_verdict", r"\b(?:reply|respond|answer|output|return|say|state|report|confirm|write|print)\b[^.\n]{0,30}\b(?:that\s+|with\s+|only\s+)?"
     r"(?:[\"']?approved[\"']?|it\s+is\s+approved|auto[\s_-]*approv\w*|low[\s_-]+risk|no\s+human|not\s+(?:be\s+)?escalat\w*|true\b)"),
    ("do_not_escalate", r"\bno\s+(?:human|person|people|one|manager|reviewer)\s+(?:needs?|has|have|should|must|is\s+required|are\s+required)\s+(?:to\s+)?"
     r"(?:see|look|review|check|sign|approve|be\s+involved)"),
    ("do_not_escalate", r"\b(?:without|no|skip(?:ping)?|bypass(?:ing)?|avoid(?:ing)?)\s+(?:a\s+|any\s+|the\s+)?(?:human|manual|manager|people)\s+"
     r"(?:review|approval|sign[\s-]?off|check|eyes|involvement|in\s+the\s+loop)\b"),
    ("do_not_escalate", r"\b(?:waived?|waiving|suspended|disabled|bypassed|skipped|lifted)\s+(?:the\s+)?(?:approval|review|sign[\s-]?off|escalation)\s*"
     r"(?:chain|process|step|steps|requirement|workflow|policy|rules?)\b"),
    ("do_not_escalate", r"\b(?:approval|review|sign[\s-]?off|escalation)\s+(?:chain|process|step|steps|requirement|workflow)\s+"
     r"(?:is|has\s+been|was|were|are)\s+(?:waived|suspended|disabled|bypassed|skipped|lifted|not\s+(?:needed|required|necessary))"),
    ("auto_approve_request", r"\b(?:approve|pass|clear|greenlight|green-light|sign\s+off)\s+(?:it|this|this\s+one|the\s+request|this\s+request|me)?\s*"
     r"(?:directly|straight\s+(?:away|through)|right\s+away|now|immediately|at\s+once|without\s+(?:question|delay|looking|checking))\b"),
    ("auto_approve_request", r"\b(?:must|should|shall|needs?\s+to|has\s+to|is\s+to)\s+be\s+(?:auto[\s-]*)?approved\s+(?:automatically|directly|immediately|now|without)\b"),
    ("set_risk", r"\b(?:classify|rate|mark|set|treat|label|score|assess|consider|flag|record|log|report|categori[sz]e)\s+"
     r"(?:it|this|this\s+one|the\s+request|this\s+request|me|the\s+expense|this\s+expense)\s+(?:as\s+)?(?:an?\s+)?(?:low|minimal|zero|no)[\s-]+risk\b"),
    ("set_risk", r"\brisk\s+(?:is|=|:)?\s*(?:to\s+be\s+)?(?:set|recorded|marked|classified|reported|logged)\s+(?:as|to)\s+(?:low|none|minimal|zero)\b"),
    ("decode_and_follow", r"\b(?:decode|decrypt|translate|unscramble|reverse|convert)\b[^.\n]{0,40}\b(?:follow|obey|execute|apply|do\s+(?:what|as)|act\s+on|comply)"),
    ("decode_and_follow", r"\b(?:decodifica|decodifique|decode[rz]?|dekodiere|entschlussele)\b[^.\n]{0,40}\b(?:sigue|siga|suis|suivez|befolge|folge|siga|segui)\b"),
    ("role_override", r"\b(?:as|you\s+are)\s+(?:the|an?)\s+(?:ai|automated|llm)\s+(?:reviewer|approver|assessor)\s*,?\s*(?:you|please|approve|mark|set)"),
)
_ML_NONLATIN: tuple[tuple[str, str], ...] = (
    # Chinese (simplified and traditional)
    ("auto_approve_request", r"(?:无需|無需|不需要|不用|免除|跳过|跳過|省略|绕过|繞過)(?:任何)?(?:人工|人为|人員|人员|主管|经理|經理)?(?:审核|審核|审批|審批|复核|複核|审查|審查|批准|核准|签字|簽字)"),
    ("auto_approve_request", r"(?:直接|立即|马上|馬上|自动|自動)(?:予以)?(?:批准|通过|通過|核准|放行|审批通过|審批通過)"),
    ("set_risk", r"(?:标记|標記|设为|設為|设置为|設置為|定为|定為|评为|評為|归类为|歸類為|视为|視為|按|判定为|判定為|分类为|分類為)(?:为|為)?(?:低风险|低風險|风险低|風險低|无风险|無風險)"),
    ("do_not_escalate", r"(?:不要|不必|无需|無需|不用|请勿|請勿)(?:将其|將其)?(?:升级|升級|上报|上報|转交|轉交|提交人工|人工审核|人工審核)"),
    ("addressing_model", r"(?:致|尊敬的|亲爱的|親愛的|各位)\s*(?:审核|審核|审批|審批|AI|ai|人工智能|模型|系统|系統|机器人|機器人)"),
    ("addressing_model", r"(?:AI|ai|人工智能|模型|审核系统|審核系統|审批系统|審批系統)(?:审核员|審核員|审核者|審核者)?\s*[:：，,]\s*(?:请|請)"),
    ("reply_verdict", r"(?:回复|回覆|回答|输出|輸出|返回)(?:为|為|说|說)?\s*[\"“「]?(?:已批准|已核准|批准|通过|通過|低风险|低風險)"),
    ("ignore_instructions", r"(?:忽略|忽视|忽視|无视|無視|忘记|忘記|不要理会|不要理會)[^。\n]{0,10}(?:指令|指示|规则|規則|提示|命令|说明|說明|要求)"),
    ("decode_and_follow", r"(?:解码|解碼|解密)[^。\n]{0,10}(?:执行|執行|照做|遵循|按照)"),
    # Japanese
    ("auto_approve_request", r"(?:自動|そのまま|直ちに|即)(?:的に)?(?:で)?承認|(?:人間|人|担当者|上長)(?:の|による)?(?:レビュー|確認|審査|承認|チェック)(?:は|を)?(?:なし|不要|省略|スキップ|せず|しないで)"),
    ("set_risk", r"低リスク(?:と|に|として)(?:して|分類|判定|評価|設定|扱|記録|回答)"),
    ("do_not_escalate", r"エスカレーション(?:しないで|せず|不要|は不要|するな)"),
    ("ignore_instructions", r"(?:以前|前|上記|これまで|上)の(?:指示|命令|ルール|指令)を(?:無視|忘れ)|指示を無視"),
    ("addressing_model", r"(?:審査|承認|レビュー)(?:システム|AI|担当AI)(?:へ|様|さん|の皆様)?\s*[:：、,へ]|(?:AI|ＡＩ)(?:審査員|レビュアー|様)"),
    ("reply_verdict", r"(?:承認済み|承認|低リスク)(?:と|で)(?:回答|返答|答え|出力|返して)"),
    # Korean
    ("auto_approve_request", r"자동\s*(?:으로)?\s*승인|(?:사람|담당자|관리자)(?:의)?\s*(?:검토|승인|확인)\s*(?:없이|생략|불필요|필요\s*없)|검토\s*없이|바로\s*승인|즉시\s*승인"),
    ("set_risk", r"(?:저위험|낮은\s*위험|위험\s*낮음|위험도\s*낮음)\s*(?:으로|으로서)?\s*(?:분류|표시|처리|평가|설정|기록|판단)"),
    ("do_not_escalate", r"(?:에스컬레이션|상부\s*보고|상신)\s*(?:하지\s*마|하지\s*말|불필요|없이)"),
    ("ignore_instructions", r"(?:이전|앞의|위의|기존)?\s*(?:지시|지침|명령|규칙)\s*(?:사항)?(?:을|를)?\s*무시"),
    ("addressing_model", r"(?:검토|승인|심사)\s*(?:시스템|AI|봇)(?:님|께|에게)?\s*[:：,]|(?:AI|인공지능)\s*(?:검토자|심사관|님)"),
    ("reply_verdict", r"(?:승인됨|승인|저위험)(?:으로|이라고)\s*(?:응답|답변|회신|출력)"),
    # Russian (and Ukrainian forms)
    ("auto_approve_request", r"(?:одобр|утверд|соглас)\w*[^.\n]{0,30}(?:без\s+(?:проверки|рассмотрения|согласования|участия|ревью|эскалации)|автоматически|сразу|напрямую)"),
    ("auto_approve_request", r"автоматическ\w*\s+(?:одобр|утверж|соглас)|без\s+(?:проверки|участия|рассмотрения)\s+(?:человек|людей|сотрудник|руководител)"),
    ("set_risk", r"(?:пометь|отметь|классифицируй|оцени|укажи|поставь|считай|запиши)\w*[^.\n]{0,30}(?:низк\w*\s+риск|риск\w*\s+(?:как\s+)?низк|низкорисков)"),
    ("do_not_escalate", r"не\s+(?:эскалируй|эскалировать|передавай|передавать)|без\s+эскалации"),
    ("ignore_instructions", r"(?:игнорируй|игнорировать|забудь|проигнорируй)\w*[^.\n]{0,30}(?:инструкци|правил|указани)"),
    ("addressing_model", r"(?:уважаем|дорог)\w+\s+(?:систем|ии|модел|ревьюер|проверяющ|бот)"),
    ("reply_verdict", r"(?:ответь|ответьте|напиши|верни|укажи)\w*[^.\n]{0,20}что[^.\n]{0,40}(?:одобрен|низк\w*\s+риск|человек\s+не)"),
    # Arabic
    ("auto_approve_request", r"(?:وافق|اعتمد|أقر|اقبل)\w*[^.\n]{0,30}(?:دون|بدون|بلا)\s+(?:مراجعة|تدخل|تصعيد|فحص|تدقيق)"),
    ("auto_approve_request", r"(?:موافقة|الموافقة|اعتماد)\s+(?:تلقائية|تلقائيا|آلية|مباشرة)|(?:بدون|دون)\s+(?:مراجعة|تدخل)\s+بشري"),
    ("set_risk", r"(?:صنف|صنّف|اعتبر|سجل|ضع|قيّم|قيم)\w*[^.\n]{0,30}(?:منخفض\w*\s+المخاطر|مخاطر\s+منخفضة|خطر\s+منخفض)"),
    ("do_not_escalate", r"(?:لا|ولا)\s+(?:تصعد|تصعّد|تحيل|ترفع)"),
    ("ignore_instructions", r"(?:تجاهل|انس|انسَ)\w*[^.\n]{0,30}(?:التعليمات|الأوامر|القواعد|السابقة)"),
    ("addressing_model", r"(?:عزيزي|إلى|الى)\s+(?:النظام|نظام\s+المراجعة|المراجع\s+الآلي|الذكاء\s+الاصطناعي|المساعد|النموذج)"),
    ("reply_verdict", r"(?:أجب|اجب|رد|أخرج)\w*[^.\n]{0,20}(?:بأن|أن|ب)[^.\n]{0,30}(?:موافق|منخفض|معتمد)"),
)
_ML_PATTERNS = tuple((name, re.compile(rx, _F | re.MULTILINE)) for name, rx in _ML)
_ML_NONLATIN_PATTERNS = tuple((name, re.compile(rx, _F | re.MULTILINE)) for name, rx in _ML_NONLATIN)

# --- talk about approval or review: no hold by itself (issue 23: "manager approved", "code review" and
# "AI assistant" are ordinary requests), but inside a hidden place (an HTML comment, a link title...) it
# holds the request, since content there is about the content, not about its approval.
_APPROVAL_TALK = re.compile(
    r"\b(?:auto[\s_-]*)?approv\w*|\bpre[\s-]?approv\w*|\bsign[\s-]?off\b|\bgreen[\s-]?light|\brubber[\s-]?stamp"
    r"|\baprob\w*|\baprueb\w*|\bapprouv\w*|\bgenehmig\w*|\bfreigeb\w*|\bfreigab\w*|\baprov\w*|\bvalidat\w*|\bvalide[rz]?\b"
    r"|\breview(?:er|ing)?\b|\brevisor\b|\brevision\b|\brelecteur|\bevaluateur|\bprufer|\bprufung|\bpruefung|\brevisao\b"
    r"|\bverdict\b|\bescalat\w*|\bescala\w*|\beskal\w*|\bhuman\b|\bhumana?\b|\bhumaine?\b|\bmensch\w*|\bwaive\w*"
    r"|批准|审批|審批|核准|放行|承認|決裁|승인|결재|одобр|утвержд|утверд|согласов|موافق|اعتماد"
    r"|审核|審核|复核|複核|人工|升级|升級|上报|上報|審査|レビュー|エスカレ|검토|심사|에스컬|проверк|эскал|человек|مراجع|تصعيد|بشري",
    _F,
)
# Concepts that act on the approval process (approval.concepts); "mark" and "auto" alone do not.
_PROCESS_CONCEPTS = frozenset({"ignore", "approve", "nocheck", "noesc", "lowrisk", "decided", "fast", "addressee"})

# --- normalisation --------------------------------------------------------------------------------------
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")
_ARABIC_MARKS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_LATIN_TO_CYRILLIC = str.maketrans("aceopxyiABCEHKMOPTXk", "асеорхуіАВСЕНКМОРТХк")
_WORD = re.compile(r"\w+")


def _strip_latin_accents(text: str) -> str:
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", text):
        if unicodedata.category(char) == "Mn" and out and out[-1].isascii():
            continue
        out.append(char)
    return unicodedata.normalize("NFC", "".join(out))


def _visible(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(
        char for char in text
        if unicodedata.category(char) != "Cf" and char not in _INVISIBLE and not 0xFE00 <= ord(char) <= 0xFE0F
    )


def _lines(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[^\S\n]+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(lines).lower()


def normalize(text: str) -> str:
    """The form the Latin-script patterns run on: NFKC, no format or invisible characters, UTS #39
    look-alikes with an ASCII prototype folded to it (Cyrillic "о", Greek "ο", mathematical letters),
    Latin accents dropped, spaces collapsed, lower case."""
    return _lines(_strip_latin_accents(fold_to_latin(_visible(text).lower())))


def _cyrillic_word(word: str) -> str:
    cyrillic = sum(1 for char in word if "\u0400" <= char <= "\u04ff")
    return word.translate(_LATIN_TO_CYRILLIC) if cyrillic and cyrillic >= len(word) / 2 else word


def normalize_native(text: str) -> str:
    """The form the other scripts' patterns run on: NFKC, no invisible characters, Arabic diacritics and
    tatweel removed, Latin look-alikes inside Cyrillic words mapped back to Cyrillic, lower case."""
    text = _ARABIC_MARKS.sub("", _visible(text))
    return _lines(_WORD.sub(lambda m: _cyrillic_word(m.group(0)), text))


def _compact(normalized: str) -> str:
    return "".join(char for char in normalized.translate(_LEET) if char.isalnum())


def _classify(text: str) -> tuple[set[str], set[str]]:
    """(injection signals, holds) of ``text`` as written (no decoding). Holds: text that pressures the
    approval process without a full instruction (an outcome claimed as settled, a path around review, a
    generic status saying "approved"); mentions of approval, review, AI, risk or encodings alone are not."""
    normalized = normalize(text)
    native = normalize_native(text)
    found = {name for name, pattern in _PATTERNS if pattern.search(normalized)}
    found.update(name for name, pattern in _ML_PATTERNS if pattern.search(normalized))
    found.update(name for name, pattern in _ML_NONLATIN_PATTERNS if pattern.search(native))
    compact = _compact(normalized)
    found.update(name for phrase, name in _COMPACT if phrase in compact)
    forms = {normalized, plain(native)}  # one form when the text is plain Latin
    soft: set[str] = set()
    for form in forms:
        hard_concepts, soft_concepts = concept_signals(form)
        found.update(hard_concepts)
        soft.update(soft_concepts)
        if approval_claims(form):
            found.add("fake_decision")
        if status_claims(form):
            soft.add("decision_like_data")
    return found, soft


def _hard(text: str) -> set[str]:
    return _classify(text)[0]


def _process_concepts(text: str) -> set[str]:
    """The approval-process concepts ``text`` names, in any of the languages (approval.concepts)."""
    return (sentence_concepts(plain(normalize_native(text))) | sentence_concepts(normalize(text))) & _PROCESS_CONCEPTS


def _talks_about_approval(text: str) -> bool:
    """Approval, review, escalation or a low-risk label named (any language): a hold inside a hidden place."""
    return bool(_process_concepts(text) or _APPROVAL_TALK.search(normalize(text)) or _APPROVAL_TALK.search(normalize_native(text)))


# A view (reversed, ROT13, ...) of ordinary text is gibberish: the full screen runs on it only when it holds
# a word instructions to a reviewer need (the views are English tricks; this keeps long texts fast).
_VIEW_WORTH_SCANNING = re.compile(r"approv|ignor|instruc|escalat|review|risk|decid|fast|skip|human|assess|evaluat|authori|cleared|"
                                  r"granted|decision|verdict|prompt|system|rules", re.IGNORECASE)


def _scan(text: str, depth: int = 0) -> tuple[set[str], set[str]]:
    hard, soft = _classify(text)
    if depth < MAX_DECODE_DEPTH:
        visible = _visible(text)
        for encoding, decoded in decoded_payloads(visible):
            if decoded == text:
                continue
            inner_hard, inner_soft = _scan(decoded, depth + 1)
            if inner_hard:
                hard.add(f"encoded_instructions_{encoding}")
            soft.add("encoded_text")
            soft.update(inner_soft)
        if depth == 0:
            # Views are computed for every text: only instructions found in them count.
            for trick, view in views(visible):
                if _VIEW_WORTH_SCANNING.search(view) and _hard(view):
                    hard.add(f"disguised_instructions_{trick}")
    return hard, soft


def detect_injection(text: str) -> list[str]:
    """Names of the injection signals found in ``text`` (sorted, unique); empty when none."""
    if not text:
        return []
    return sorted(_scan(text)[0])


# --- every text parameter -----------------------------------------------------------------------------
# Short fields (ids, names) hold a word or two; sentences there are a way to smuggle instructions.
SHORT_FIELDS = ("request_type", "department", "requester_id")
_SENTENCE = re.compile(r"[,;:!?\n{}<>\[\]()\"'|]|\s\S+\s\S+\s\S+\s\S+")


@dataclass
class Screening:
    """What the screen found. ``signals`` (per field) make a request injection-suspected; ``holds`` do
    not, but keep it from being approved automatically."""

    signals: dict[str, list[str]] = field(default_factory=dict)
    holds: dict[str, list[str]] = field(default_factory=dict)
    # field -> hidden kind ("tag", "bidi", "zero_width", ...) -> characters removed or shown (approval.hidden)
    hidden: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def suspected(self) -> bool:
        return bool(self.signals)

    @property
    def held(self) -> bool:
        return bool(self.holds)

    def signal_names(self) -> list[str]:
        return sorted({name for names in self.signals.values() for name in names})

    def hold_names(self) -> list[str]:
        return sorted({name for names in self.holds.values() for name in names})

    def hidden_summary(self) -> str:
        return "; ".join(f"{name}: " + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
                         for name, kinds in self.hidden.items())

    def to_dict(self) -> dict[str, Any]:
        return {"signals": {k: list(v) for k, v in self.signals.items()}, "holds": {k: list(v) for k, v in self.holds.items()},
                "hidden_characters": {k: dict(v) for k, v in self.hidden.items()}}


def screen(fields: Mapping[str, str]) -> Screening:
    """Screen every free-text field (content, request_type, department, requester_id, ...)."""
    result = Screening()
    for name, raw in fields.items():
        if not raw:
            continue
        revealed = reveal(raw)
        value = revealed.text  # what the models are sent too (approval.llm)
        if revealed.removed:
            result.hidden[name] = revealed.removed
        hard, soft = _scan(value)
        if any(len(payload.strip()) >= 4 for payload in revealed.hidden):
            soft.add("hidden_text")
        for place, segment in hidden_places(value):
            segment_hard, segment_soft = _classify(segment)
            if segment_hard or segment_soft:
                hard.add(f"instructions_in_{place}")
            elif _talks_about_approval(segment):
                soft.add(f"approval_talk_in_{place}")
        # Short fields (a name, a department) hold a word or two: a sentence there that names the approval
        # process is an instruction smuggled where none belongs; "AI Research (Labs)" or "O'Brien" is not.
        if name in SHORT_FIELDS and (soft or hard or (_SENTENCE.search(normalize(value)) and _process_concepts(value))):
            hard.add("instructions_in_" + name)
        if hard:
            result.signals[name] = sorted(hard)
        if soft:
            result.holds[name] = sorted(soft)
    return result


__all__ = ["SHORT_FIELDS", "Screening", "decoded_payloads", "detect_injection", "normalize",
           "normalize_native", "screen"]
