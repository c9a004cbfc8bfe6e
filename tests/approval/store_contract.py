"""What the approval store tests share: a routed record, a race of approvers, and the contract every
ApprovalStore must pass (each store's test module subclasses ``StoreContract``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from approval.records import ApprovalStore, RecordExists, UnknownRequest
from approval.transitions import ApprovalRecord, TransitionResult

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
StoreFactory = Callable[[], ApprovalStore]


def routed(
    request_id: str = "REQ-1", *, deadline: datetime | None = None, required: str = "director"
) -> ApprovalRecord:
    return ApprovalRecord(request_id, "pending", 1, required, "alice", deadline)


def race(stores: StoreFactory, count: int, expected_version: int | None) -> list[TransitionResult]:
    """``count`` approvers, each with its own store handle (as separate processes), released together."""
    handles = [stores() for _ in range(count)]
    barrier = threading.Barrier(count)
    results: list[TransitionResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def approver(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            result = handles[n].transition(
                "REQ-1",
                event="approve",
                actor_id=f"approver-{n}",
                actor_level="vp",
                expected_version=expected_version,
                now=NOW,
            )
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=approver, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(results) == count
    return results


class StoreContract:
    """Tests every ApprovalStore must pass. Subclasses provide the ``stores`` fixture: a factory of handles
    that all see the same data (for Redis: separate connections, as separate plugin processes have)."""

    @pytest.fixture
    def store(self, stores: StoreFactory) -> ApprovalStore:
        return stores()

    def test_is_an_approval_store(self, store: ApprovalStore) -> None:
        assert isinstance(store, ApprovalStore)

    def test_create_and_get(self, store: ApprovalStore) -> None:
        assert store.get("REQ-1") is None
        record = routed(deadline=NOW + timedelta(hours=4))
        assert store.create(record, now=NOW) == record
        assert store.get("REQ-1") == record
        with pytest.raises(RecordExists, match="already exists"):
            store.create(routed())
        assert store.get("REQ-1") == record

    def test_unknown_request(self, store: ApprovalStore) -> None:
        with pytest.raises(UnknownRequest) as caught:
            store.transition("NOPE", event="approve", actor_id="bob", actor_level="vp", now=NOW)
        assert isinstance(caught.value, KeyError)
        assert str(caught.value).startswith("unknown approval request 'NOPE'")
        assert store.history("NOPE") == []

    @pytest.mark.parametrize("request_id", ["", "x" * 201, "a\nb", "{tag}"])
    def test_request_id_is_validated(self, store: ApprovalStore, request_id: str) -> None:
        with pytest.raises(ValueError, match=r"^request_id:"):
            store.get(request_id)

    def test_accepted_transition_moves_the_version(self, store: ApprovalStore) -> None:
        store.create(routed())
        claim = store.transition(
            "REQ-1", event="claim", actor_id="bob", actor_level="director", expected_version=1, now=NOW
        )
        assert (claim.accepted, claim.state, claim.version) == (True, "under_review", 2)
        stored = store.get("REQ-1")
        assert stored is not None and (stored.state, stored.version) == ("under_review", 2)

    def test_stale_write_is_refused_with_the_current_state(self, store: ApprovalStore) -> None:
        store.create(routed())
        first = store.transition(
            "REQ-1", event="escalate", actor_id="bob", actor_level="manager", expected_version=1, now=NOW
        )
        assert first.accepted and first.required_level == "vp"
        stale = store.transition(
            "REQ-1", event="reject", actor_id="carol", actor_level="executive", expected_version=1, now=NOW
        )
        assert not stale.accepted and stale.code == "stale_version"
        assert (stale.state, stale.version, stale.required_level) == ("escalated", 2, "vp")
        assert stale.reason == (
            "stale version: expected 1 but the request is at version 2 (state escalated); reload and retry"
        )
        stored = store.get("REQ-1")
        assert stored is not None and (stored.state, stored.version) == ("escalated", 2)

    def test_idempotency_key_returns_the_first_result_and_applies_once(self, store: ApprovalStore) -> None:
        store.create(routed())
        kwargs = {
            "event": "escalate",
            "actor_id": "bob",
            "actor_level": "manager",
            "idempotency_key": "try-1",
        }
        first = store.transition("REQ-1", now=NOW, **kwargs)  # type: ignore[arg-type]
        again = store.transition("REQ-1", now=NOW + timedelta(minutes=5), **kwargs)  # type: ignore[arg-type]
        assert first.accepted and again == first
        stored = store.get("REQ-1")
        assert stored is not None and (stored.version, stored.required_level) == (2, "vp")
        assert len(store.history("REQ-1")) == 2
        # Without the key, the same request is a new transition (illegal now: already escalated).
        fresh = store.transition("REQ-1", now=NOW, event="escalate", actor_id="bob", actor_level="manager")
        assert not fresh.accepted and fresh.code == "illegal_transition"

    def test_idempotency_key_keeps_a_refusal_and_is_per_request(self, store: ApprovalStore) -> None:
        store.create(routed())
        store.create(routed("REQ-2"))
        low = store.transition(
            "REQ-1", event="approve", actor_id="bob", actor_level="manager", now=NOW, idempotency_key="k"
        )
        assert not low.accepted and low.code == "level_too_low"
        assert (
            store.transition(
                "REQ-1", event="approve", actor_id="bob", actor_level="manager", now=NOW, idempotency_key="k"
            )
            == low
        )
        other = store.transition(
            "REQ-2", event="approve", actor_id="bob", actor_level="vp", now=NOW, idempotency_key="k"
        )
        assert other.accepted and other.request_id == "REQ-2"

    def test_idempotency_key_reused_for_another_transition_is_an_error(self, store: ApprovalStore) -> None:
        store.create(routed())
        store.transition(
            "REQ-1", event="claim", actor_id="bob", actor_level="vp", now=NOW, idempotency_key="k"
        )
        with pytest.raises(ValueError, match=r"^idempotency_key: already used for claim"):
            store.transition(
                "REQ-1", event="cancel", actor_id="bob", actor_level="vp", now=NOW, idempotency_key="k"
            )
        stored = store.get("REQ-1")
        assert stored is not None and stored.state == "under_review"

    def test_history_is_append_only_with_creation_changes_and_expiry(self, store: ApprovalStore) -> None:
        store.create(routed(deadline=NOW + timedelta(hours=1)), now=NOW)
        store.transition(
            "REQ-1", event="claim", actor_id="bob", actor_level="director", expected_version=1, now=NOW
        )
        snapshot = store.history("REQ-1")
        snapshot.append({"kind": "forged"})  # a copy: the stored history cannot be changed through it
        refused = store.transition("REQ-1", event="approve", actor_id="alice", actor_level="vp", now=NOW)
        assert refused.code == "self_approval"
        late = store.transition(
            "REQ-1", event="approve", actor_id="bob", actor_level="vp", now=NOW + timedelta(hours=2)
        )
        assert (late.accepted, late.state, late.version) == (False, "expired", 3)
        after = store.transition(
            "REQ-1", event="cancel", actor_id="bob", actor_level="vp", now=NOW + timedelta(hours=3)
        )
        assert after.reason == "request is already expired; no further transitions"
        history = store.history("REQ-1")
        assert [entry["kind"] for entry in history] == ["created", "transition", "expired"]
        assert [entry["version"] for entry in history] == [1, 2, 3]
        assert history[0] == {
            "kind": "created",
            "request_id": "REQ-1",
            "state": "pending",
            "version": 1,
            "required_level": "director",
            "requester_id": "alice",
            "deadline": "2025-03-01T13:00:00Z",
            "at": "2025-03-01T12:00:00Z",
        }
        assert history[1]["from_state"] == "pending" and history[1]["state"] == "under_review"
        assert history[1]["actor_id"] == "bob" and history[1]["actor_level"] == "director"
        assert history[2]["reason"].startswith("deadline passed at 2025-03-01T13:00:00Z")
        stored = store.get("REQ-1")
        assert stored is not None and (stored.state, stored.version) == ("expired", 3)

    @pytest.mark.parametrize("level", [None, ""])
    def test_escalate_and_cancel_need_no_actor_level_and_the_history_records_none(
        self, store: ApprovalStore, level: str | None
    ) -> None:
        store.create(routed())
        escalated = store.transition("REQ-1", event="escalate", actor_id="bob", actor_level=level, now=NOW)
        assert (escalated.accepted, escalated.state, escalated.required_level) == (True, "escalated", "vp")
        cancelled = store.transition("REQ-1", event="cancel", actor_id="bob", actor_level=level, now=NOW)
        assert (cancelled.accepted, cancelled.state) == (True, "cancelled")
        assert [entry["actor_level"] for entry in store.history("REQ-1")[1:]] == [None, None]

    @pytest.mark.parametrize("event", ["claim", "approve", "reject"])
    def test_deciding_events_without_an_actor_level_are_refused_before_anything_is_written(
        self, store: ApprovalStore, event: str
    ) -> None:
        store.create(routed())
        with pytest.raises(ValueError, match=r"^actor_level: required to"):
            store.transition("REQ-1", event=event, actor_id="bob", actor_level=None, now=NOW)
        stored = store.get("REQ-1")
        assert stored is not None and (stored.state, stored.version) == ("pending", 1)
        assert len(store.history("REQ-1")) == 1


class CompareAndSetContract(StoreContract):
    """The contract plus what compare-and-set guarantees: of concurrent writers exactly one wins (the
    in-memory and Redis stores; Dify plugin storage has no compare-and-set)."""

    def test_two_concurrent_approvers_exactly_one_wins(self, stores: StoreFactory) -> None:
        stores().create(routed())
        results = race(stores, 2, expected_version=1)
        accepted = [r for r in results if r.accepted]
        refused = [r for r in results if not r.accepted]
        assert len(accepted) == 1 and len(refused) == 1
        assert refused[0].code == "stale_version"
        assert (refused[0].state, refused[0].version) == ("approved", 2)
        stored = stores().get("REQ-1")
        assert stored is not None and (stored.state, stored.version) == ("approved", 2)
        assert [e["kind"] for e in stores().history("REQ-1")] == ["created", "transition"]

    @pytest.mark.parametrize("expected_version", [1, None])
    def test_twenty_racers_exactly_one_wins(self, stores: StoreFactory, expected_version: int | None) -> None:
        stores().create(routed())
        results = race(stores, 20, expected_version=expected_version)
        winners = [r for r in results if r.accepted]
        assert len(winners) == 1
        losers = [r for r in results if not r.accepted]
        # With a version the losers are stale; without one they see the approved request.
        assert {r.code for r in losers} == {"stale_version" if expected_version else "terminal"}
        assert all((r.state, r.version) == ("approved", 2) for r in losers)
        history = stores().history("REQ-1")
        assert len(history) == 2 and history[1]["actor_id"] == winners[0].actor_id
