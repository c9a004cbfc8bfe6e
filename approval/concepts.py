"""What a sentence does to the approval process, in 26 languages: concepts, combined per sentence.

A phrase list only knows the phrasings it was written against; these concepts are the parts every
phrasing of "get this approved without a person" needs, in any register:

* ``ignore``   — set aside the instructions or rules ("ignore previous instructions", "negeer ... instructies")
* ``approve``  — approve / approved, as a verb ("approve", "goedkeuren", "zatwierdź", "onayla", "อนุมัติ")
* ``nocheck``  — without a person, review or check ("without human review", "bez weryfikacji", "bila ukaguzi")
* ``auto``     — automatically, directly, at once ("automatisch", "od razu", "langsung", "ทันที")
* ``lowrisk`` and ``mark`` — a low-risk label and a verb that sets a label ("mark", "classify", "treat as")
* ``noesc``    — do not escalate
* ``addressee`` — words addressed to whatever judges the request ("dear reviewing system", "whatever
  evaluates this", "any automated stage", "note for the AI", "Beste beoordelingssysteem")
* ``decided``  — the outcome claimed as already settled ("already decided", "pre-cleared", "record it as
  granted", "treat the outcome as final", "exempt from sign-off")
* ``fast``     — a path around the process ("fast-track", "express lane", "wave it through", "straight to")

Rules (per sentence, see :func:`concept_signals`): ignore, noesc, approve+nocheck, approve+auto,
lowrisk+mark, decided+fast, and addressee with any outcome are injections; decided, fast or nocheck
alone hold the request for a person. Mentions of approval, review, AI, renewal or a manager's approval
alone are none of these.
"""

# ruff: noqa: E501  (vocabulary tables: one language a line)
from __future__ import annotations

import re
import unicodedata

_F = re.IGNORECASE

_IGNORE = [
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(?:instructions?|rules|guidelines|prompts?|directives)\b",
    r"\bnegeer\b[^.\n]{0,30}\b(?:instructies|regels)\b", r"\bignorera\b[^.\n]{0,30}\b(?:instruktioner|regler)\b",
    r"\bzignoruj\b[^.\n]{0,30}\b(?:instrukcje|polecenia|zasady)\b", r"\bignoruj\b[^.\n]{0,30}\b(?:pokyny|instrukce|pravidla)\b",
    r"\bignora\b[^.\n]{0,30}\b(?:instructiunile|regulile)\b", r"\bігноруй\w*[^.\n]{0,30}(?:інструкц|правил)",
    r"\bαγνο\w*[^.\n]{0,30}(?:οδηγιες|κανονες)", r"talimatlar\w*\s+(?:yok\s+say|gormezden\s+gel|unut)",
    r"התעלם[^.\n]{0,30}(?:הוראות|כללים)", r"निर्देश\S*[^।\n]{0,20}(?:अनदेखा|नज़रअंदाज़|भूल)", r"(?:ละเว้น|เพิกเฉย|ไม่ต้องสนใจ)\S{0,10}คำสั่ง",
    r"\bbo\s+qua\b[^.\n]{0,30}\bhuong\s+dan\b", r"\babaikan\b[^.\n]{0,30}\b(?:instruksi|perintah|aturan)\b",
    r"\bpuuza\b[^.\n]{0,30}\bmaagizo\b", r"\bignora\b[^.\n]{0,30}\b(?:istruzioni|regole)\b",
]
_APPROVE = [
    r"\b(?:auto[\s_-]*)?approv(?:e|ed|ing|al)\b", r"\bgreen[\s-]?li(?:gh)?t\w*", r"\bsign[\s-]?off\b",
    r"\b(?:aprueb|aprob|aprov|approuv)\w*", r"\bapprova(?:re|to|ta|la|lo|te)?\b", r"\bvalid(?:er|ez|ar)\b", r"\b(?:genehmig|freigeb|freigab|freigegeben)\w*",
    r"\bgoed(?:keur|gekeurd)\w*", r"\bkeur\b[^.\n]{0,20}\bgoed\b", r"\bgodkan\w*", r"\bzatwierd\w*", r"\bschval\w*",
    r"\baprob\w*", r"(?:схвал|затверд|одобр|утверд)\w*", r"(?:εγκρ|ενεκρ|εγκεκρ)\w*", r"\bonay\w*",
    r"(?:ו?אשרי?\s+(?:את|אוטומטית)|ואשר|לאשר|מאושר|אישור)", r"(?:स्वीकृत|मंज़ूर|मंजूर|अनुमोदित)", r"อนุมัติ", r"\b(?:phe\s+)?duyet\b",
    r"\b(?:setujui|disetujui|menyetujui)\b", r"\b(?:idhinish|imeidhinish|iidhinish)\w*", r"(?<![\w])وافق",
    r"批准|核准|审批通过|審批通過|通过|通過|承認|승인|موافق|اعتماد|اعتمد",
]
_NOCHECK = [
    r"\b(?:without|no|skip\w*|bypass\w*)\s+(?:the\s+|a\s+|any\s+)?(?:(?:human|manual|further|second|person'?s?)\s+)?(?:review|check|look|eyes|step|sign[\s-]?off|hand[\s-]?off|oversight)\b",
    r"\b(?:without|no)\s+(?:a\s+)?(?:human|person)\b(?!\s+resources)",
    r"\bwithout\s+(?:a\s+)?(?:review|second\s+look|checks?|hand[\s-]?off|oversight|looking)\b", r"\bno\s+(?:human|person|one)\s+(?:needs|has|must)\b",
    r"\bnothing\s+here\s+needs\b", r"\bskip\w*\s+(?:the\s+)?(?:review|manual|human|check)", r"\bnot\s+required\b[^.\n]{0,20}\breview",
    r"\bzonder\s+(?:menselijke\s+)?(?:controle|beoordeling|toetsing)\b", r"\butan\s+(?:manuell\s+)?(?:granskning|kontroll)\b",
    r"\bbez\s+(?:weryfikacji|sprawdzania|kontroli|lidske\s+kontroly|kontroly)\b", r"\bfara\s+verificare\b",
    r"\bбез\s+(?:перевірки|перевiрки|проверки|участия\s+человека)\b", r"χωρις\s+(?:ανθρωπινο\s+)?ελεγχο",
    r"\b(?:incelemesi|kontrol)\s+olmadan\b", r"ללא\s+(?:בדיקה|ביקורת)", r"बिना[^।\n]{0,25}(?:जाँच|जांच|समीक्षा)",
    r"(?:โดย)?ไม่ต้อง(?:ให้คน)?ตรวจ", r"\bkhong\s+can\s+(?:nguoi\s+)?kiem\s+tra\b", r"\btanpa\s+(?:pemeriksaan|dicek|peninjauan)\b",
    r"\bbila\s+ukaguzi\b", r"\bsenza\s+(?:controllo|revisione)\b", r"\bsin\s+(?:revision|control|intervencion|supervision)\b",
    r"\bsans\s+(?:validation|controle|verification|revision|escalade)\b", r"\bohne\s+(?:\w+\s+)?(?:prufung|pruefung|kontrolle)\b",
    r"\bsem\s+(?:revisao|analise|intervencao)\b", r"无需人工|無需人工|跳过审批|跳過審批|人間のレビューは不要|確認は省略|검토\s*없이",
    r"без\s+(?:проверки|эскалации)", r"(?:دون|بدون)\s+(?:مراجعة|تدخل)",
    # "no need for a check", "nobody needs to look", "the review is not needed / superfluous", in each language
    r"\bno\s+need\s+(?:for|of|to)\s+(?:a\s+|any\s+)?(?:\w+\s+){0,2}(?:check|review|verification|look|send|involve|escalat|approval)\w*",
    r"\b(?:nobody|no\s+one|nothing|noone)\b[^.\n]{0,20}\b(?:needs?|has)\s+to\s+(?:\w+\s+){0,1}(?:check|double[\s-]?check|look|review|weigh|see|approve|sign)",
    r"\bnothing\s+for\s+anyone\s+to\b", r"\bwaste\s+of\s+(?:a|the)\s+(?:reviewer|approver|person)'?s?\s+time\b",
    r"\b(?:check|review|verification|scrutiny|assessment|approval|sign[\s-]?off)\s+(?:is\s+|are\s+)?(?:not\s+(?:needed|required|necessary)|unnecessary|superfluous|redundant|satisfied)\b",
    r"\bwithout\s+(?:queue?ing|routing|sending)\b", r"\bno\s+hace\s+falta\s+(?:que\s+nadie|revis|verific|comprob|aprob)", r"\bsin\s+que\s+nadie\b",
    r"\b(?:inutile|pas\s+besoin)\s+de\s+(?:le\s+|la\s+)?(?:soumettre|verifier|controler|valider|relire|faire\s+verifier)",
    r"\b(?:prufung|kontrolle|freigabe)\s+(?:ist\s+)?(?:nicht\s+(?:notig|noetig|erforderlich)|uberflussig|unnotig)", r"\bkeine\s+(?:prufung|kontrolle)\s+(?:notig|noetig|erforderlich)",
    r"\beinfach\s+durchlassen\b", r"\b(?:beoordeling|controle|goedkeuring)\s+is\s+(?:overbodig|niet\s+nodig)\b", r"\bingen\s+granskning\s+behovs\b",
    r"\bkontrola\s+neni\s+potreba\b", r"\bnu\s+e\s+nevoie\s+de\s+verificare\b", r"перевірка\s+не\s+потрібна", r"проверка\s+не\s+(?:требуется|нужна)",
    r"δεν\s+χρειαζεται\s+ελεγχος", r"\bkontrol\s+gerekmez\b", r"אין\s+צורך\s+ב(?:בדיקה|ביקורת)", r"जाँच\s+की\s+ज़रूरत\s+नहीं",
    r"ไม่จำเป็นต้องตรวจ", r"\bkhong\s+can\s+kiem\s+tra\b", r"\btidak\s+perlu\s+(?:pemeriksaan|dicek|diperiksa)\b", r"\bhakuna\s+haja\s+ya\s+ukaguzi\b",
    # keeping a person out: "don't make a person look", "never wait for a human", "not in someone's inbox"
    r"\b(?:don'?t|do\s+not|never|didn'?t|not|no\s+need\s+to|rather\s+not)\b[^.\n]{0,40}\b(?:a\s+person|a\s+human|someone|somebody|anyone|a\s+manager|an\s+approver)\b[^.\n]{0,25}\b(?:look|see|check|review|wait|inbox|involve|bother|touch)",
    r"\b(?:wait|waiting)\s+for\s+a\s+(?:human|person)\b", r"\bend\s+up\s+in\s+(?:someone|somebody|anyone)'?s\s+inbox\b",
    r"確認なし|チェックなし|審査なし|確認せずに", r"그냥\s*처리", r"\bsenza\s+(?:che\s+nessuno|passare\s+da)\b",
    r"无需(?:再)?(?:走)?(?:审核|审查|审批)|不需要(?:审查|審查|审核|審核)", r"(?:確認|チェック|審査)は?不要", r"검토\S{0,2}\s*필요\s*없", r"لا\s+حاجة\s+(?:لل|إلى\s+)?مراجعة",
]
_AUTO = [
    r"\b(?:automatically|straight\s+away|right\s+away|directly|immediately)\b", r"\bautomatisch\b", r"\bmeteen\b", r"\bautomatiskt\b",
    r"\bdirekt\b", r"\bautomatycznie\b", r"\bod\s+razu\b", r"\bnatychmiast\w*", r"\bautomaticky\b", r"\bhned\b",
    r"\bautomat\b", r"\baproba\s+direct\b", r"\bimediat\w*", r"\b(?:автоматично|одразу|негайно|сразу|немедленно)\b", r"(?:αυτοματα|αμεσως)",
    r"\b(?:otomatik\w*|hemen|dogrudan)\b", r"(?:אוטומטית|מיד)", r"(?:स्वचालित|तुरंत|सीधे)", r"(?:อัตโนมัติ|ทันที|เลย)",
    r"\b(?:tu\s+dong|ngay|luon)\b", r"\b(?:otomatis|langsung)\b", r"\b(?:moja\s+kwa\s+moja|sasa\s+hivi)\b",
    r"\b(?:subito|direttamente|automaticamente|directamente|diretamente|automatiquement|directement)\b",
    r"自动|自動|直接|即|바로|즉시|자동", r"(?:تلقائي|فورا|مباشرة)",
]
_LOWRISK = [
    r"\blow[\s-]*risk\b", r"\blaag\s+risico\b", r"\blag\s+risk\b", r"\bniskie\s+ryzyko\b", r"\bnizke\s+riziko\b", r"\brisc\s+scazut\b",
    r"низьк\w*\s+ризик", r"низк\w*\s+риск", r"χαμηλο\w*\s+κινδυν", r"\bdusuk\s+risk\b", r"סיכון\s+נמוך", r"कम\s+जोखिम",
    r"ความเสี่ยงต่ำ", r"\brui\s+ro\s+thap\b", r"\brisiko\s+rendah\b", r"\bhatari\s+ndogo\b", r"\b(?:basso\s+rischio|rischio\s+basso)\b",
]
_MARK = [
    r"\b(?:mark|classify|treat|label|rate|flag|record|consider|handle)\b", r"\bmarkeer\b", r"\bklassa\b", r"\boznacz\b", r"\boznac\b",
    r"\bmarcheaza\b", r"позна\w*", r"σημαν\w*", r"\bisaretle\b", r"סמן", r"चिह्नित", r"(?:จัดเป็น|ให้ถือ)", r"\bdanh\s+dau\b",
    r"\btandai\b", r"\bweka\s+kama\b", r"\bsegnala\b",
]
_NOESC = [
    r"\b(?:do\s+not|don'?t|never|no\s+need\s+to)\s+escalat\w*", r"\bno\s+escalation\b", r"\bniet\s+escaleren\b", r"\beskalera\s+inte\b",
    r"\bnie\s+eskaluj\b", r"\bneeskaluj\b", r"\bnu\s+escalad\w*", r"\bне\s+ескалю\w*", r"\bне\s+эскалиру\w*", r"μην\s+κλιμακω\w*",
    r"\byukseltme\b", r"אל\s+תעביר", r"आगे\s+न\s+भेज", r"ไม่ต้องส่งต่อ", r"\bkhong\s+chuyen\s+cap\b", r"\bjangan\s+eskalasi\b",
    r"\busipeleke\s+juu\b", r"\bnon\s+escalare\b", r"エスカレーション(?:しない|不要)", r"에스컬레이션\s*(?:하지|금지)", r"不要升级|不要升級",
]
_ADDRESSEE = [
    r"\b(?:whatever|whoever|anything|any\s+system|any\s+process)\b[^.\n]{0,30}\b(?:evaluat|assess|screen|review|read|process|judg)\w*",
    r"\bany\s+(?:automated|evaluation|assessment|review|screening|downstream)\s+(?:stage|step|check|process)\b", r"\bdownstream\s+handling\b",
    r"\b(?:dear|hi|hello|hey|attention|note\s+(?:to|for)|to)\s+(?:the\s+)?(?:ai|a\.i\.|model|assistant|bot|system|reviewer|assessor|evaluator|reviewing\s+system|approval\s+bot|automated\s+\w+)\b",
    r"\b(?:reviewer|assessor|evaluator|reviewer\s+bot|approval\s+bot)\b", r"\bthe\s+(?:assessing|reviewing|evaluating|screening)\s+(?:system|model|process)\b",
    r"\b(?:as\s+the|if\s+you\s+are\s+(?:an?|the))\s+(?:ai|model|reviewer|assistant)\b", r"\boutcome\s+of\s+this\s+(?:assessment|evaluation|review)\b",
    r"\bbeoordelingssysteem\b", r"\bwat\s+deze\s+regel\b", r"\bhej\s+ai\b", r"\bden\s+som\s+bedomer\b", r"\bdrogi\s+systemie\b",
    r"\bto,\s+co\s+ocenia\b", r"\bmily\s+systeme\b", r"\bcokoli\s+tento\b", r"\bdraga\s+sistem\b", r"шановна\s+система", r"те,\s+що\s+оцінює",
    r"αγαπητο\s+συστημα", r"\bsevgili\s+degerlendirme\b", r"\bdegerlendiren\s+her\s+ne\b", r"מערכת\s+הבדיקה", r"समीक्षा\s+प्रणाली",
    r"ถึงระบบ", r"\bhe\s+thong\s+danh\s+gia\b", r"\bbat\s+cu\s+thu\s+gi\s+dang\s+danh\s+gia\b", r"\bsistem\s+peninjau\b",
    r"\bapa\s+pun\s+yang\s+menilai\b", r"\bmfumo\s+mpendwa\b", r"\bcaro\s+sistema\b", r"\bqualunque\s+cosa\s+valuti\b",
    r"\bquien\s+evalue\b", r"\bce\s+qui\s+evalue\b", r"\bwas\s+auch\s+immer\b[^.\n]{0,30}\bbewertet\b", r"\bquem\s+avaliar\b",
    r"тот,\s+кто\s+оценивает", r"評価するもの|審査システム|審査AI|AI審査", r"평가하는\s*주체|검토\s*시스템|검토자", r"评估此行|評估此行|审核系统|審核系統|AI审核",
    r"أي\s+جهة\s+تقي", r"\b(?:ai|reviewer|assessor)\s*(?:ji|san|sama)\b", r"\b(?:reviewer|assessor|system|ai)\s*[,:]",
    r"проверяющ\w*", r"\brevisor\b", r"\bprufsystem\b",
]
_DECIDED = [
    r"\balready\s+(?:decided|approved|authori[sz]ed|signed\s+off|cleared|settled|green[\s-]?lit)\b", r"\bpre[\s-]?cleared\b",
    r"\bcleared\s+(?:every|all)\s+gates?\b", r"\b(?:record|close|mark)\s+(?:it|this)\s+as\s+(?:granted|accepted|approved|final)\b",
    r"\btreat\s+the\s+(?:outcome|result|decision)\s+as\s+final\b", r"\bexempt\s+from\s+(?:the\s+)?(?:usual\s+)?(?:sign[\s-]?off|review|approval)",
    r"\bdecision\s+already\s+taken\b", r"\bverdict\b[^.\n]{0,30}\bwas\s+reached\b", r"\bfor\s+the\s+record\s+only\b",
    r"\bsettled\s+without\s+a\s+second\s+look\b", r"\bblanket\s+authori[sz]ation\b", r"\ba\s+formality\b", r"\b(?:review|approval|sign[\s-]?off|check|process|chain)\w*\s+(?:\w+\s+){0,3}waived\b|\bwaived\b[^.\n]{0,20}\b(?:review|approval|sign[\s-]?off|check)",
    r"\bal\s+besloten\b", r"\bredan\s+beslutat\b", r"\bjuz\s+rozstrzygnie\w*", r"\bjiz\s+rozhodnut\w*", r"вже\s+вирішен\w*",
    r"\bzaten\s+karara\s+baglanmis\b", r"\bda\s+duoc\s+quyet\s+dinh\b", r"\bsudah\s+diputuskan\b", r"\bgia\s+decisa\b",
    r"\bpor\s+resuelta\b", r"\bdeja\s+tranchee\b", r"\bbereits\s+(?:entschieden|genehmigt|freigegeben)\b", r"\bja\s+decidida\b",
    r"уже\s+решённ\w*|уже\s+решенн\w*", r"既に決定済み", r"이미\s*결정", r"已定案", r"محسوم",
    # "already seen / cleared / agreed with finance", "take it as read", "a formality", in each language
    r"\balready\s+(?:been\s+)?(?:seen|cleared|agreed|validated|reviewed|checked|vetted|through\s+the\s+wringer)\b", r"\bbeen\s+through\s+the\s+wringer\b",
    r"\btake\s+it\s+as\s+read\b", r"\bscrutiny\s+satisfied\b", r"\bsigned,?\s+sealed\b", r"\bcloses?\s+the\s+loop\b", r"\brubber[\s-]?stamp\w*",
    r"\bonly\s+sensible\s+outcome\b", r"\binside\s+the\s+delegated\s+envelope\b", r"\bstanding\s+order\b[^.\n]{0,30}\bproceed\b",
    r"\bya\s+fue\s+(?:visto|revisado|aprobado)\b", r"\bdeja\s+boucle\b", r"\breine\s+formsache\b", r"\bformalit(?:y|e|at|a)\b",
    r"\bal\s+afgestemd\b", r"уже\s+согласован\w*", r"已与\S{1,8}确认|已與\S{1,8}確認", r"既に\S{0,8}確認済み",
    # settled elsewhere: "auto-cleared", "cleared by the CFO", "been over this with Finance", "a notification, not a question"
    r"\bauto[\s-]?cleared\b", r"\bcleared\s+by\s+(?:the\s+)?(?:cfo|ceo|vp|finance|director|manager|board)\b",
    r"\b(?:been\s+over|agreed|settled|squared)\s+(?:this|it)\b[^.\n]{0,30}\bwith\s+(?:the\s+)?(?:finance|cfo|ceo|vp|director|board)\b",
    r"\bnotification,?\s+not\s+a\s+(?:question|request)\b", r"\bhousekeeping\s+rather\s+than\b", r"\bfyi\s+only\b",
    r"\b(?:same\s+as|like|consistent\s+with)\b[^.\n]{0,40}\b(?:went\s+through|were\s+approved|was\s+approved|passed)\s+on\s+(?:their|its)\s+own\b",
    r"\b(?:un|simple)\s+tramite\b", r"\b(?:schon|bereits)\s+abgesegnet\b", r"\bja\s+foi\s+acertado\b", r"\bgia\s+stato\s+visto\b",
    r"이미\s*\S{0,8}\s*합의", r"\bsadece\s+bir\s+formalite\b", r"\bsimple\s+formalite\b",
]
_FAST = [
    r"\bfast[\s-]?track\w*", r"\bexpress\s+lane\b", r"\bstraight\s+through\b|\bstraight\s+to\s+(?:settlement|payment|approval|the\s+approved)\b", r"\bwave\s+it\s+through\b",
    r"\blet\s+it\s+(?:flow|pass|through)\b", r"\bstraight\s+pass\b", r"\bconfirm\s+and\s+close\b", r"\bsimply\s+confirm\b",
    r"\bwithout\s+being\s+bounced\b", r"\bpass(?:ed)?\s+(?:it\s+)?through\s+as\s+is\b",
    # asking whoever reads it to close it: "just tick it off", "closing it is all that's left", "pode fechar"
    r"\b(?:just|simply|please|kindly)\s+(?:tick|close|clear|sign)\s+(?:it|this)\s*(?:off|out)?\b", r"\bclosing\s+it\s+is\s+all\b",
    r"\bpode\s+fechar\b", r"\bbasta\s+chiudere\b", r"\bmerci\s+de\s+cloturer\b", r"\bkapatabilirsiniz\b", r"\bcon\s+registrarlo\s+basta\b",
    r"\bsnelle\s+route\b", r"\bsnabbsparet\b", r"\bszybka\s+sciezka\b", r"швидким\s+шляхом", r"\bhizli\s+yoldan\b",
    r"\bluong\s+nhanh\b", r"\bjalur\s+cepat\b", r"\bcorsia\s+veloce\b", r"\bvia\s+rapida\b", r"\bcircuit\s+court\b", r"\bdurchwinken\b",
    r"быстрому\s+пути", r"ファストトラック", r"패스트트랙", r"快速通道", r"المسار\s+السريع",
]


def _compile(fragments: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fragment})" for fragment in fragments), _F)


CONCEPTS: dict[str, re.Pattern[str]] = {
    "ignore": _compile(_IGNORE), "approve": _compile(_APPROVE), "nocheck": _compile(_NOCHECK), "auto": _compile(_AUTO),
    "lowrisk": _compile(_LOWRISK), "mark": _compile(_MARK), "noesc": _compile(_NOESC), "addressee": _compile(_ADDRESSEE),
    "decided": _compile(_DECIDED), "fast": _compile(_FAST),
}
_OUTCOME = frozenset({"approve", "nocheck", "lowrisk", "noesc", "decided", "fast"})
_SENTENCES = re.compile(r"(?<=[.!?;。！？；])\s+|\n+|(?<=[。！？])")


def plain(text: str) -> str:
    """Lower case, marks dropped after Latin, Greek and Cyrillic letters (where they only decorate), kept in
    scripts where they carry meaning (Devanagari, Thai, Hebrew, Arabic)."""
    out: list[str] = []
    for char in unicodedata.normalize("NFD", text.lower()):
        if unicodedata.category(char) == "Mn" and out and (ord(out[-1]) < 0x0530 or 0x1E00 <= ord(out[-1]) <= 0x1FFF):
            continue
        out.append(char)
    return unicodedata.normalize("NFC", "".join(out))


def sentence_concepts(sentence: str) -> set[str]:
    return {name for name, pattern in CONCEPTS.items() if pattern.search(sentence)}


def concept_signals(text: str) -> tuple[set[str], set[str]]:
    """(injection signals, holds) from the concepts each sentence of ``text`` combines (see the module doc)."""
    hard: set[str] = set()
    soft: set[str] = set()
    for sentence in _SENTENCES.split(plain(text)):
        if not sentence.strip():
            continue
        found = sentence_concepts(sentence)
        if "ignore" in found:
            hard.add("ignore_instructions")
        if "noesc" in found:
            hard.add("do_not_escalate")
        if "approve" in found and found & {"nocheck", "auto"}:
            hard.add("auto_approve_request")
        if {"lowrisk", "mark"} <= found:
            hard.add("set_risk")
        if {"decided", "fast"} <= found:
            hard.add("outcome_claimed")
        if "addressee" in found and found & _OUTCOME:
            hard.add("addresses_reviewer")
        if found & {"decided", "fast", "nocheck"}:
            soft.add("pressures_the_process")
    return hard, soft


__all__ = ["CONCEPTS", "concept_signals", "plain", "sentence_concepts"]
