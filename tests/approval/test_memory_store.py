"""The in-memory approval store: the contract, and the record a workflow carries."""

from __future__ import annotations

import pytest

from approval.records import MemoryApprovalStore, StoreUnavailable, UnknownRequest
from tests.approval.store_contract import NOW, CompareAndSetContract, StoreFactory, routed


class TestMemoryStore(CompareAndSetContract):
    @pytest.fixture
    def stores(self) -> StoreFactory:
        shared = MemoryApprovalStore()
        return lambda: shared


def test_a_carried_record_is_used_until_a_transition_changes_it() -> None:
    asked: list[str] = []

    def carried(request_id: str):
        asked.append(request_id)
        return routed(request_id)

    store = MemoryApprovalStore(carried=carried)
    refused = store.transition("REQ-1", event="approve", actor_id="bob", actor_level="manager", now=NOW)
    assert refused.code == "level_too_low" and store.get("REQ-1") is None and store.history("REQ-1") == []
    claimed = store.transition("REQ-1", event="claim", actor_id="bob", actor_level="vp", now=NOW)
    assert (claimed.accepted, claimed.version) == (True, 2)
    assert [entry["kind"] for entry in store.history("REQ-1")] == ["created", "transition"]
    approved = store.transition("REQ-1", event="approve", actor_id="bob", actor_level="vp", now=NOW)
    assert (approved.accepted, approved.version) == (True, 3)
    assert asked == ["REQ-1", "REQ-1"]  # not asked once the store holds the request


def test_without_a_carried_record_an_unknown_request_is_unknown() -> None:
    with pytest.raises(UnknownRequest):
        MemoryApprovalStore().transition("REQ-1", event="claim", actor_id="bob", actor_level="vp", now=NOW)


def test_store_unavailable_message_says_fail_closed() -> None:
    message = str(StoreUnavailable("connection refused"))
    assert "Redis is unreachable" in message and "fails closed" in message and "connection refused" in message
    other = str(StoreUnavailable("timed out", backend="Dify plugin storage"))
    assert other.startswith("approval store unavailable: Dify plugin storage is unreachable (timed out)")
    assert "redis_url" not in other
