"""Policy loading, validation messages, currency conversion and boundary semantics."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
import yaml

from approval.engine import ApprovalRequest
from approval.levels import APPROVER_LEVELS
from approval.policy import BUNDLED_POLICY_PATH, Policy, PolicyError, UnknownCurrencyError, parse_amount

MINIMAL: dict[str, Any] = {
    "version": "t-1",
    "base_currency": "USD",
    "currency_rates": {"USD": 1, "EUR": 1.1},
    "default": {"level": "manager", "risk": "low"},
    "rules": [
        {"id": "mid", "when": {"amount_min": 100, "amount_max": 200}, "then": {"min_level": "director"}},
        {"id": "legal", "when": {"request_types": ["legal"]}, "then": {"min_level": "vp", "min_risk": "medium"}},
        {"id": "big-spend", "when": {"amount_min": 200}, "then": {"min_level": "executive", "min_risk": "high"}},
    ],
    "auto_approve": {"amount_max": 50, "request_types": ["expense"], "max_risk": "low"},
    "sla_hours": {"manager": 8, "director": 16},
}


def _req(amount: Any, currency: str = "USD", request_type: str = "purchase", department: str = "ops",
         priority: str = "normal", deadline_hours: float | None = None) -> ApprovalRequest:
    return ApprovalRequest("p-1", "text", amount, currency, request_type, department, "emp-1", priority, deadline_hours)


def _with(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    mutate(data)
    return data


def test_bundled_policy_loads_and_matches_the_file() -> None:
    policy = Policy.bundled()
    raw = yaml.safe_load(BUNDLED_POLICY_PATH.read_text(encoding="utf-8"))
    assert policy.version == raw["version"]
    assert policy.base_currency == "USD"
    assert [rule.id for rule in policy.rules] == [rule["id"] for rule in raw["rules"]]
    assert set(policy.sla_hours) == set(APPROVER_LEVELS)
    assert Policy.bundled() is policy  # cached


def test_load_accepts_yaml_json_and_mapping() -> None:
    from_dict = Policy.load(MINIMAL)
    from_json = Policy.load(json.dumps(MINIMAL))
    from_yaml = Policy.load(yaml.safe_dump(MINIMAL))
    for policy in (from_json, from_yaml):
        assert policy.version == from_dict.version
        assert policy.rules == from_dict.rules
        assert policy.currency_rates == from_dict.currency_rates


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["rules"][2]["then"].update(min_level="boss"),
         "rule 'big-spend' (#3): 'min_level' must be one of manager, director, vp, executive"),
        (lambda d: d["rules"][1]["then"].update(min_risk="extreme"),
         "rule 'legal' (#2): 'min_risk' must be one of low, medium, high"),
        (lambda d: d["rules"][0]["when"].update(amount_mn=5), "rule 'mid' (#1): 'when': unknown field(s) amount_mn"),
        (lambda d: d["rules"][0]["when"].update(amount_min=500), "rule 'mid' (#1): 'amount_min' (500) must be below"),
        (lambda d: d["rules"][0]["when"].update(amount_min=-1), "rule 'mid' (#1): amount_min must not be negative"),
        (lambda d: d["rules"][0]["when"].update(amount_max="lots"), "rule 'mid' (#1): amount_max must be a number"),
        (lambda d: d["rules"][1]["when"].update(request_types="legal"),
         "rule 'legal' (#2): 'request_types' must be a non-empty list"),
        (lambda d: d["rules"][1]["when"].update(priorities=["asap"]), "rule 'legal' (#2): 'priorities' must be one of"),
        (lambda d: d["rules"][1].update(then={}), "rule 'legal' (#2): 'then' needs 'min_level' and/or 'min_risk'"),
        (lambda d: d["rules"][1].update(id="mid"), "rule 'mid' (#2): duplicate rule id"),
        (lambda d: d["rules"][0].pop("id"), "rule #1: 'id' must be"),
        (lambda d: d["rules"].append("nope"), "rule #4: must be a mapping"),
        (lambda d: d.update(version=1.0), "'version' must be a non-empty string"),
        (lambda d: d.update(base_currency="dollars"), "'base_currency' must be a 3-letter currency code"),
        (lambda d: d["currency_rates"].update(EUR=0), "currency_rates 'EUR': 'rate' must be greater than 0"),
        (lambda d: d["currency_rates"].update(USD=2), "the base currency USD must have rate 1"),
        (lambda d: d.update(levels=["manager", "vp"]), "'levels' must be [manager, director, vp, executive]"),
        (lambda d: d["default"].update(level="ceo"), "'default': 'level' must be one of"),
        (lambda d: d["auto_approve"].update(max_risk="none"), "'auto_approve': 'max_risk' must be one of"),
        (lambda d: d["sla_hours"].update(intern=4), "'sla_hours': 'level' must be one of"),
        (lambda d: d.update(rulez=[]), "policy: unknown field(s) rulez"),
    ],
)
def test_validation_errors_name_the_rule_and_field(mutate: Any, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.load(_with(mutate))
    assert message in str(info.value)


@pytest.mark.parametrize("text", ["", "   ", "version: [unclosed", "- just\n- a list\n", "42"])
def test_unparseable_policy_text_is_a_policy_error(text: str) -> None:
    with pytest.raises(PolicyError, match="policy"):
        Policy.load(text)


def test_yaml_syntax_error_reports_the_line() -> None:
    with pytest.raises(PolicyError, match="line 2, column 13"):
        Policy.load('version: "1"\nrules: [a: b: c]\n')


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("100", "USD", Decimal("100")),
        ("100", "EUR", Decimal("108.00")),
        ("100", "eur", Decimal("108.00")),
        ("1000", "JPY", Decimal("6.7000")),
        ("100", "GBP", Decimal("127.00")),
        ("100", "CNY", Decimal("14.00")),
    ],
)
def test_currency_conversion_is_exact(amount: str, currency: str, expected: Decimal) -> None:
    assert Policy.bundled().to_base(Decimal(amount), currency) == expected


def test_unknown_currency_is_a_clear_error_not_a_guess() -> None:
    policy = Policy.bundled()
    with pytest.raises(UnknownCurrencyError) as info:
        policy.evaluate(_req("10", "XYZ"))
    message = str(info.value)
    assert message.startswith("unknown currency 'XYZ': the policy converts USD, EUR, GBP")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("amount", "level"),
    [
        ("0", "manager"), ("99.99", "manager"), ("100", "director"), ("199.99", "director"),
        ("200", "executive"), (199.99, "director"), (Decimal("200.00"), "executive"),
    ],
)
def test_amount_min_is_inclusive_and_amount_max_exclusive(amount: Any, level: str) -> None:
    assert Policy.load(MINIMAL).evaluate(_req(amount)).approver_level == level


def test_strictest_rule_wins_and_all_matches_are_reported() -> None:
    decision = Policy.load(MINIMAL).evaluate(_req("150", request_type="legal"))
    assert decision.matched_rules == ["mid", "legal"]
    assert (decision.approver_level, decision.risk_level) == ("vp", "medium")
    assert decision.sla_hours is None  # no SLA configured for vp
    assert any("rule 'legal'" in factor for factor in decision.factors)


def test_default_applies_when_nothing_matches() -> None:
    decision = Policy.load(_with(lambda d: d.update(default={"level": "director", "risk": "medium"}))).evaluate(_req("1"))
    assert decision.matched_rules == []
    assert (decision.approver_level, decision.risk_level) == ("director", "medium")
    assert decision.sla_hours == 16.0


def test_text_conditions_are_case_and_separator_insensitive() -> None:
    policy = Policy.bundled()
    decision = policy.evaluate(_req("6000", request_type="Purchase", department="IT Security"))
    assert "security-purchases" in decision.matched_rules
    assert policy.evaluate(_req("6000", request_type="purchase", department="it_security")).matched_rules == \
        decision.matched_rules


def test_auto_approve_eligibility_under_minimal_policy() -> None:
    policy = Policy.load(MINIMAL)
    assert policy.evaluate(_req("49.99", request_type="expense")).auto_approve_eligible
    assert not policy.evaluate(_req("50", request_type="expense")).auto_approve_eligible
    assert not policy.evaluate(_req("10", request_type="purchase")).auto_approve_eligible
    no_auto = Policy.load(_with(lambda d: d.pop("auto_approve")))
    assert not no_auto.evaluate(_req("1", request_type="expense")).auto_approve_eligible


def test_conversion_applies_before_bands() -> None:
    policy = Policy.load(MINIMAL)
    assert policy.evaluate(_req("90", "EUR")).approver_level == "manager"  # 99.00 USD
    assert policy.evaluate(_req("91", "EUR")).approver_level == "director"  # 100.10 USD
    assert policy.evaluate(_req("90", "EUR")).amount_base == Decimal("99.0")


@pytest.mark.parametrize("value", [-1, "-0.01", Decimal("-5"), float("nan"), float("inf"), "abc", True, None, []])
def test_parse_amount_rejects_bad_values(value: Any) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_amount(value)


def test_parse_amount_keeps_decimal_precision() -> None:
    assert parse_amount(999.99) == Decimal("999.99")
    assert parse_amount("1,000.00") == Decimal("1000.00")
    assert parse_amount(7) == Decimal(7)


def test_sha256_is_the_same_however_the_policy_is_written() -> None:
    as_yaml = Policy.load(yaml.safe_dump(MINIMAL, sort_keys=False))
    reordered = dict(reversed(list(copy.deepcopy(MINIMAL).items())))
    reordered["currency_rates"] = {"EUR": "1.10", "USD": "1.000"}
    reordered["auto_approve"]["amount_max"] = 50.00
    as_json = Policy.load(json.dumps(reordered) + "\n")
    commented = Policy.load("# our policy\n" + yaml.safe_dump(MINIMAL, sort_keys=True))
    assert len(as_yaml.sha256) == 64
    assert as_yaml.sha256 == as_json.sha256 == commented.sha256
    assert as_yaml.canonical() == as_json.canonical()
    json.dumps(as_yaml.canonical())  # plain JSON


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version="t-2"),
        lambda d: d["rules"][0]["then"].update(min_level="vp"),
        lambda d: d["rules"][0]["when"].update(amount_max=201),
        lambda d: d["currency_rates"].update(EUR=1.2),
        lambda d: d["auto_approve"].update(max_risk="medium"),
        lambda d: d["sla_hours"].update(manager=9),
        lambda d: d["rules"].reverse(),  # rule order is what matched_rules reports
    ],
)
def test_sha256_changes_when_the_policy_does(mutate: Any) -> None:
    assert Policy.load(_with(mutate)).sha256 != Policy.load(MINIMAL).sha256


def test_bundled_policy_sha256_is_stable() -> None:
    """Audit records carry this hash: it may only change when the bundled policy itself changes."""
    assert Policy.bundled().sha256 == "a59e900d847a5e941ee2fcc3884cce6620c1a1d9d58d5acc60638cce4b032602"
    assert Policy.load(BUNDLED_POLICY_PATH.read_text(encoding="utf-8")).sha256 == Policy.bundled().sha256


BILLION_LAUGHS = 'a: &a ["lol","lol","lol"]\nb: &b [*a,*a,*a]\nc: &c [*b,*b,*b]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BILLION_LAUGHS, "policy: the text uses a YAML alias (*a) on line 2"),
        ("[" * 10_000 + "]" * 10_000, "policy: the text is nested too deeply"),
        ("- " * 10_000 + "x", "policy: the text is nested too deeply"),
        ('{"version": "\\ud800"}', "policy: the text contains an invalid Unicode character (lone surrogate \\ud800"),
        ('version: "1"\nbase_currency: USD\ncurrency_rates: {EUR: ' + "9" * 5_000 + "}", "thousands of digits"),
        ('version: "1"\nbase_currency: USD\ncurrency_rates: {EUR: .inf}', "not finite"),
        ('version: "1"\nbase_currency: USD\ncurrency_rates: {EUR: "1e999999999"}', "'rate' must be below 1,000,000,000,000,000"),
        ('version: "1"\nbase_currency: USD\ncurrency_rates: {EUR: "1e-999999999"}', "'rate' has more than 12 decimal places"),
        ('version: "' + "v" * 300 + '"\nbase_currency: USD', "'version' must be at most 200 printable characters"),
    ],
)
def test_hostile_policy_text_is_a_short_policy_error(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.load(text)
    assert message in str(caught.value) and len(str(caught.value)) < 300


def test_values_in_policy_errors_are_quoted_short_and_visible() -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.load(_with(lambda d: d["rules"][0]["then"].update(min_level="\x07" * 100_000)))
    message = str(caught.value)
    assert "'min_level' must be one of" in message and "'\\x07\\x07" in message and "(100000 characters)" in message
    assert len(message) < 500
    with pytest.raises(PolicyError) as caught:
        Policy.load(_with(lambda d: d.update({f"k{i}\x1b": 1 for i in range(1_000)})))
    assert "unknown field(s) 'k0\\x1b'" in str(caught.value) and "and 990 more" in str(caught.value)
    assert len(str(caught.value)) < 1_000
