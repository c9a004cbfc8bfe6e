"""The approval state machine, exhaustively: every (state, event) pair against an expectation written here."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from approval.transitions import (
    CODES,
    TRANSITIONS,
    ApprovalRecord,
    TransitionResult,
    apply_transition,
    parse_instant,
    person_key,
    transition_table_markdown,
)

ALL_STATES = ["pending", "under_review", "approved", "rejected", "escalated", "expired", "cancelled"]
ALL_EVENTS = ["claim", "approve", "reject", "escalate", "cancel"]
LEVELS = ["manager", "director", "vp", "executive"]
FINAL = {"approved", "rejected", "expired", "cancelled"}

# Written out by hand, independently of approval.transitions.TRANSITIONS.
LEGAL: dict[str, dict[str, str]] = {
    "pending": {
        "claim": "under_review",
        "approve": "approved",
        "reject": "rejected",
        "escalate": "escalated",
        "cancel": "cancelled",
    },
    "under_review": {
        "approve": "approved",
        "reject": "rejected",
        "escalate": "escalated",
        "cancel": "cancelled",
    },
    "escalated": {
        "claim": "under_review",
        "approve": "approved",
        "reject": "rejected",
        "cancel": "cancelled",
    },
    "approved": {},
    "rejected": {},
    "expired": {},
    "cancelled": {},
}
NEXT_LEVEL = {"manager": "director", "director": "vp", "vp": "executive", "executive": "executive"}

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DEADLINES: dict[str, datetime | None] = {
    "none": None,
    "future": NOW + timedelta(hours=1),
    "exactly_now": NOW,
    "passed": NOW - timedelta(seconds=1),
}
VERSION = 4
EXPECTED_VERSIONS: dict[str, int | None] = {"absent": None, "fresh": VERSION, "stale_low": 3, "stale_high": 5}


def expectation(
    state: str,
    event: str,
    actor_level: str,
    required: str,
    self_actor: bool,
    expected: int | None,
    deadline: datetime | None,
) -> tuple[bool, str, int, str, str]:
    """(accepted, state, version, required level, reason prefix) the machine must produce."""
    if expected is not None and expected != VERSION:
        return False, state, VERSION, required, "stale version: expected"
    if state in FINAL:
        return False, state, VERSION, required, f"request is already {state}"
    if deadline is not None and deadline < NOW:
        return False, "expired", VERSION + 1, required, "deadline passed at"
    if event not in LEGAL[state]:
        return False, state, VERSION, required, f"cannot {event} a request that is {state}"
    if event == "approve" and self_actor:
        return False, state, VERSION, required, "the requester cannot approve their own request"
    if event in ("approve", "reject", "claim") and LEVELS.index(actor_level) < LEVELS.index(required):
        return (
            False,
            state,
            VERSION,
            required,
            f"actor level {actor_level} is below the required level {required}",
        )
    new_required = NEXT_LEVEL[required] if event == "escalate" else required
    return True, LEGAL[state][event], VERSION + 1, new_required, "ok"


@pytest.mark.parametrize(("state", "event"), list(itertools.product(ALL_STATES, ALL_EVENTS)))
def test_every_combination(state: str, event: str) -> None:
    checked = 0
    for actor_level, required, self_actor, (_, expected), (_, deadline) in itertools.product(
        LEVELS, LEVELS, (False, True), EXPECTED_VERSIONS.items(), DEADLINES.items()
    ):
        record = ApprovalRecord("REQ-1", state, VERSION, required, "alice", deadline)
        actor = "alice" if self_actor else "bob"
        result = apply_transition(
            record, event=event, actor_id=actor, actor_level=actor_level, expected_version=expected, now=NOW
        )
        accepted, new_state, version, new_required, reason = expectation(
            state, event, actor_level, required, self_actor, expected, deadline
        )
        context = (state, event, actor_level, required, self_actor, expected, deadline)
        assert result.accepted is accepted, context
        assert result.state == new_state, context
        assert result.version == version, context
        assert result.required_level == new_required, context
        assert result.reason.startswith(reason), (context, result.reason)
        assert (result.reason == "ok") is accepted, context
        assert result.event == event and result.actor_id == actor and result.request_id == "REQ-1"
        assert result.to_outputs() == {
            "accepted": accepted,
            "state": new_state,
            "version": version,
            "reason": result.reason,
        }
        checked += 1
    assert checked == 4 * 4 * 2 * 4 * 4


def test_table_matches_the_hand_written_one() -> None:
    assert {(s, e): t for s, events in LEGAL.items() for e, t in events.items()} == TRANSITIONS


def test_reasons_in_full() -> None:
    record = ApprovalRecord("R", "under_review", 2, "director", "alice", NOW)
    stale = apply_transition(
        record, event="approve", actor_id="bob", actor_level="vp", expected_version=1, now=NOW
    )
    assert (
        stale.reason
        == "stale version: expected 1 but the request is at version 2 (state under_review); reload and retry"
    )
    illegal = apply_transition(record, event="claim", actor_id="bob", actor_level="vp", now=NOW)
    assert (
        illegal.reason
        == "cannot claim a request that is under_review; allowed: approve, reject, escalate, cancel"
    )
    low = apply_transition(record, event="approve", actor_id="bob", actor_level="manager", now=NOW)
    assert low.reason == "actor level manager is below the required level director"
    late = apply_transition(
        record, event="approve", actor_id="bob", actor_level="vp", now=NOW + timedelta(seconds=1)
    )
    assert late.reason == "deadline passed at 2025-03-01T12:00:00Z: the request expired"
    assert (late.accepted, late.state, late.version) == (False, "expired", 3)
    done = ApprovalRecord("R", "approved", 3, "director", "alice")
    final = apply_transition(done, event="cancel", actor_id="bob", actor_level="vp", now=NOW)
    assert final.reason == "request is already approved; no further transitions"


def test_requester_may_cancel_escalate_and_reject_but_not_approve() -> None:
    record = ApprovalRecord("R", "pending", 1, "manager", "Alice", None)
    for event in ("cancel", "escalate", "reject", "claim"):
        assert apply_transition(
            record, event=event, actor_id="alice", actor_level="manager", now=NOW
        ).accepted
    # Identifiers are compared trimmed and case-folded.
    refused = apply_transition(record, event="approve", actor_id=" ALICE ", actor_level="executive", now=NOW)
    assert not refused.accepted and refused.code == "self_approval"


def test_escalate_raises_the_required_level_and_caps_at_executive() -> None:
    record = ApprovalRecord("R", "pending", 1, "manager", "alice")
    steps = []
    for _ in range(4):
        result = apply_transition(record, event="escalate", actor_id="bob", actor_level="manager", now=NOW)
        assert result.accepted
        steps.append(result.required_level)
        record = record.advanced(result)
        claim = apply_transition(record, event="claim", actor_id="carol", actor_level="executive", now=NOW)
        record = record.advanced(claim)
    assert steps == ["director", "vp", "executive", "executive"]
    assert record.version == 9 and len(record.history) == 8


def test_record_round_trip_and_result_round_trip() -> None:
    record = ApprovalRecord(
        "R", "escalated", 7, "vp", "alice", datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    )
    assert record.deadline == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert ApprovalRecord.from_dict(record.to_dict()) == record
    result = apply_transition(
        record, event="approve", actor_id="bob", actor_level="vp", expected_version=7, now=NOW
    )
    assert TransitionResult.from_dict(result.to_dict()) == result


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"event": "aprove"}, "event"),
        ({"actor_level": "ceo"}, "actor_level"),
        ({"actor_id": ""}, "actor_id"),
        ({"expected_version": -1}, "expected_version"),
        ({"expected_version": "3"}, "expected_version"),
        ({"expected_version": True}, "expected_version"),
    ],
)
def test_malformed_inputs_raise_value_error_naming_the_parameter(
    kwargs: dict[str, object], parameter: str
) -> None:
    record = ApprovalRecord("R", "pending", 1, "manager", "alice")
    arguments: dict[str, object] = {
        "event": "approve",
        "actor_id": "bob",
        "actor_level": "vp",
        "now": NOW,
        **kwargs,
    }
    with pytest.raises(ValueError, match=f"^{parameter}:"):
        apply_transition(record, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "parameter"),
    [
        ({"state": "open"}, "state"),
        ({"required_level": "boss"}, "required_level"),
        ({"version": 1.5}, "version"),
        ({"requester_id": " "}, "requester_id"),
        ({"request_id": ""}, "request_id"),
    ],
)
def test_malformed_records_raise_value_error_naming_the_field(
    fields: dict[str, object], parameter: str
) -> None:
    values: dict[str, object] = {
        "request_id": "R",
        "state": "pending",
        "version": 1,
        "required_level": "manager",
        "requester_id": "alice",
        **fields,
    }
    with pytest.raises(ValueError, match=f"^{parameter}:"):
        ApprovalRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00:00Z", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T12:00:00z", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T13:30:00+01:30", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T07:00:00-05:00", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T12:00:00", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01 12:00", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
        ("  2025-03-01T12:00:00.250Z ", datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    parsed = parse_instant(text, "deadline")
    assert parsed == expected and parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", ["", "   ", "tomorrow", "2025-13-01T00:00:00Z", "2025-03-01T25:00Z", "12/03/2025"]
)
def test_parse_instant_refuses_naming_the_field(text: str) -> None:
    with pytest.raises(ValueError, match=r"^now:"):
        parse_instant(text, "now")


def test_parse_instant_refuses_non_strings() -> None:
    with pytest.raises(ValueError, match=r"^deadline:"):
        parse_instant(None, "deadline")  # type: ignore[arg-type]


def test_markdown_table_lists_every_state_and_event() -> None:
    table = transition_table_markdown()
    lines = table.strip().splitlines()
    assert lines[0] == "| state | claim | approve | reject | escalate | cancel |"
    assert len(lines) == 2 + len(ALL_STATES)
    assert "| `pending` | `under_review` | `approved` | `rejected` | `escalated` | `cancelled` |" in lines
    assert "| `escalated` | `under_review` | `approved` | `rejected` | — | `cancelled` |" in lines
    assert "| `expired` (terminal) | — | — | — | — | — |" in lines


@pytest.mark.parametrize("level", [None, "", "  "])
@pytest.mark.parametrize("event", ["escalate", "cancel"])
def test_escalate_and_cancel_take_an_empty_actor_level(level: str | None, event: str) -> None:
    record = ApprovalRecord("R", "pending", 1, "director", "alice")
    result = apply_transition(record, event=event, actor_id="bob", actor_level=level, now=NOW)  # type: ignore[arg-type]
    assert result.accepted and result.code == "ok"


@pytest.mark.parametrize("level", [None, ""])
@pytest.mark.parametrize("event", ["claim", "approve", "reject"])
def test_claim_approve_and_reject_need_an_actor_level(level: str | None, event: str) -> None:
    record = ApprovalRecord("R", "pending", 1, "manager", "alice")
    with pytest.raises(ValueError, match=f"^actor_level: required to {event}"):
        apply_transition(record, event=event, actor_id="bob", actor_level=level, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "disguised",
    [
        "alice\u200b",  # zero-width space
        "\ufeffalice",  # byte order mark
        "ali\u200dce",  # zero-width joiner
        "\u202ealice",  # right-to-left override
        "ａｌｉｃｅ",  # full-width, folded by NFKC
        "ALICE\u00a0",  # no-break space
        "al ice",
    ],
)
def test_a_disguised_requester_id_cannot_approve_their_own_request(disguised: str) -> None:
    record = ApprovalRecord("R", "pending", 1, "manager", "alice")
    refused = apply_transition(record, event="approve", actor_id=disguised, actor_level="vp", now=NOW)
    assert (refused.accepted, refused.code) == (False, "self_approval"), ascii(disguised)
    # And the other way round: the requester registered with the disguise.
    record = ApprovalRecord("R", "pending", 1, "manager", disguised)
    refused = apply_transition(record, event="approve", actor_id="alice", actor_level="vp", now=NOW)
    assert refused.code == "self_approval", ascii(disguised)


def test_person_key_keeps_different_people_apart() -> None:
    assert person_key("alice") != person_key("alicia")
    assert person_key("bob.smith") != person_key("bobsmith")
    record = ApprovalRecord("R", "pending", 1, "manager", "alice")
    assert apply_transition(record, event="approve", actor_id="alice2", actor_level="vp", now=NOW).accepted


def test_codes_are_the_ones_results_carry() -> None:
    assert CODES == (
        "ok", "stale_version", "terminal", "expired", "illegal_transition", "self_approval", "level_too_low", "contention",
        "not_an_approver", "level_not_granted",
    )


@pytest.mark.parametrize(
    "actor",
    [
        "\u0430lice",  # Cyrillic а
        "\u0251lice",  # Latin alpha
        "\u03b1lice",  # Greek alpha
        "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth
        "ali\u200bce", "al\u200dice", "\ufeffalice", "alice\u2060",  # zero-width and joiners
        "a\u0301lice", "alic\u0327e", "a\u034flice",  # combining marks, combining grapheme joiner
        "ALICE", "Alice ", "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e",  # case, space, mathematical bold
        "a1ice", "aIice",  # digit one, capital I
        # issue 21: Greek capitals and small letters, whole-script look-alikes and blanks
        "ALIC\u0395", "\u0391LIC\u0395", "\u03b1lic\u03b5",  # Greek capital epsilon / alpha, small alpha+epsilon
        "\u0410LIC\u0415", "\u0430lic\u0435",  # Cyrillic capital and small а, е
        "alice\u2800", "al\u3164ice", "\u115falice", "alic\u1160e", "alice\uffa0",  # braille blank, Hangul fillers
    ],
)
def test_self_approval_is_refused_for_confusable_ids(actor: str) -> None:
    record = ApprovalRecord("R-1", "pending", 1, "manager", "alice")
    result = apply_transition(record, event="approve", actor_id=actor, actor_level="vp", now=NOW)
    assert (result.accepted, result.code) == (False, "self_approval"), actor


def test_confusable_folding_is_uts39_skeleton_both_ways() -> None:
    from approval.confusables import UNICODE_VERSION, person_keys, skeleton, table

    assert UNICODE_VERSION == "13.0.0" and len(table()) > 6000
    assert skeleton("\u0430") == "a" and skeleton("1") == "l" and skeleton("m") == "rn"
    assert person_keys("Ian") & person_keys("lan") and person_keys("Ian") & person_keys("ian")
    assert not person_keys("alice") & person_keys("alicia")
    assert not person_keys("\u0930\u093e\u092e") & person_keys("\u0930\u092e")  # Devanagari vowel signs are kept


def test_greek_and_cyrillic_fold_in_both_cases_and_blanks_vanish() -> None:
    """UTS #39 maps small epsilon to "ꞓ" but capital epsilon to "E": case-folded first, "ALICΕ" would be
    "alicꞓ" and a different person. Greek and Cyrillic letters fold to the Latin letter either case passes for."""
    from approval.confusables import fold_scripts, person_keys

    assert fold_scripts("\u03b1lic\u03b5") == "alice" and fold_scripts("\u0391LIC\u0395").casefold() == "alice"
    for disguise in ("ALIC\u0395", "\u0391LIC\u0395", "\u03b1lic\u03b5", "alice\u2800"):
        assert "alice" in person_keys(disguise), ascii(disguise)
    for other in ("alicia", "alic", "elise", "\u03b1lex"):
        assert not person_keys(other) & person_keys("alice"), other


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-01:00"])
def test_parse_instant_refuses_an_offset_that_leaves_the_calendar(text: str) -> None:
    with pytest.raises(ValueError, match=r"^deadline: '.*' is outside the calendar once its offset is applied"):
        parse_instant(text, "deadline")


def test_parse_instant_handles_the_calendar_edges_in_utc() -> None:
    assert parse_instant("9999-12-31T23:59:59Z", "now") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_instant("0001-01-01T00:00:00-00:00", "now") == datetime(1, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", ["\x00" * 2_000_000, "2025-03-01T12:00:00Z" + "\x1b" * 100])
def test_parse_instant_quotes_only_a_short_prefix(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_instant(text, "deadline")
    message = str(caught.value)
    assert len(message) < 400 and "\x00" not in message and "\x1b" not in message


# ----------------------------------------------------------------------------- identities from the policy (issue 21)

TEAM_POLICY = {
    "version": "team-1", "base_currency": "USD",
    "approvers": {"manager": ["max"], "director": ["dana"], "executive": ["erin"]},
}


def team_authority():
    from approval.policy import Policy

    authority = Policy.load(TEAM_POLICY).authority
    assert authority is not None
    return authority


@pytest.mark.parametrize(
    ("actor", "claimed", "code"),
    [
        ("max", "vp", "level_not_granted"),  # a named manager claiming vp
        ("max", "director", "level_not_granted"),
        ("max", "manager", "level_too_low"),  # the policy's level, too low for a director request
        ("max", None, "level_too_low"),
        ("eve", "executive", "not_an_approver"),  # a person the policy does not name
        ("eve", None, "not_an_approver"),
        ("MAX", "vp", "level_not_granted"),  # look-alikes of a named person are that person
    ],
)
@pytest.mark.parametrize("event", ["claim", "approve", "reject"])
def test_with_named_approvers_the_level_is_the_policys(actor: str, claimed: str | None, code: str, event: str) -> None:
    record = ApprovalRecord("R", "pending", 1, "director", "amy")
    result = apply_transition(record, event=event, actor_id=actor, actor_level=claimed, now=NOW, authority=team_authority())
    assert (result.accepted, result.code, result.version, result.state) == (False, code, 1, "pending"), result.reason
    if code == "level_not_granted":
        assert f"claims level {claimed}, but the administrator's policy names them as manager" in result.reason
    if code == "not_an_approver":
        assert "is not an approver in the administrator's policy" in result.reason


@pytest.mark.parametrize("claimed", [None, "manager", "director"])
def test_the_named_director_decides_at_the_policys_level(claimed: str | None) -> None:
    record = ApprovalRecord("R", "pending", 1, "director", "amy")
    result = apply_transition(record, event="approve", actor_id="dana", actor_level=claimed, now=NOW, authority=team_authority())
    assert (result.accepted, result.state) == (True, "approved")
    higher = apply_transition(record, event="approve", actor_id="dana", actor_level="vp", now=NOW, authority=team_authority())
    assert higher.code == "level_not_granted"


@pytest.mark.parametrize("event", ["escalate", "cancel"])
def test_escalate_and_cancel_are_open_to_the_requester_and_named_people_only(event: str) -> None:
    record = ApprovalRecord("R", "pending", 1, "director", "amy")
    authority = team_authority()
    for actor in ("amy", "\u0430my", "max", "erin"):
        assert apply_transition(record, event=event, actor_id=actor, actor_level=None, now=NOW, authority=authority).accepted
    stranger = apply_transition(record, event=event, actor_id="eve", actor_level="executive", now=NOW, authority=authority)
    assert (stranger.accepted, stranger.code) == (False, "not_an_approver")
    assert "only the requester or an approver named in the administrator's policy" in stranger.reason


def test_without_named_approvers_the_callers_level_stands() -> None:
    from approval.policy import Policy

    assert Policy.load({**TEAM_POLICY, "approvers": None}).authority is None
    record = ApprovalRecord("R", "pending", 1, "director", "amy")
    assert apply_transition(record, event="approve", actor_id="eve", actor_level="executive", now=NOW).accepted
    with pytest.raises(ValueError, match=r"^actor_level: required to approve"):
        apply_transition(record, event="approve", actor_id="eve", actor_level=None, now=NOW)


def test_dify_users_map_is_part_of_the_policy_and_checked() -> None:
    from approval.policy import Policy, PolicyError

    policy = Policy.load({**TEAM_POLICY, "dify_users": {"u-123": "dana"}})
    assert policy.dify_users == {"u-123": "dana"} and policy.canonical()["dify_users"] == {"u-123": "dana"}
    assert Policy.load(TEAM_POLICY).sha256 != policy.sha256
    with pytest.raises(PolicyError, match="'dify_users'"):
        Policy.load({**TEAM_POLICY, "dify_users": {"u-1": ["dana"]}})
