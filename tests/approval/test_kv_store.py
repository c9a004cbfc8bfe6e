"""The approval store in a key-value storage (Dify plugin storage): the contract without compare-and-set,
the keys it writes, the record a workflow carries, and failures of the storage."""

from __future__ import annotations

import hashlib
import json

import pytest

from approval.kv_store import KeyValueApprovalStore, idempotency_key_of, record_key
from approval.records import StoreUnavailable
from tests.approval.store_contract import NOW, StoreContract, StoreFactory, routed


class DictStorage:
    """What the daemon keeps for `self.session.storage`: bytes by key."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes:
        return self.data[key]

    def set(self, key: str, val: bytes) -> None:
        assert isinstance(val, bytes)
        self.data[key] = val

    def exist(self, key: str) -> bool:
        return key in self.data

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class BrokenStorage(DictStorage):
    def exist(self, key: str) -> bool:
        raise RuntimeError("backwards invocation failed: daemon unreachable")


class TestKeyValueStore(StoreContract):
    @pytest.fixture
    def stores(self) -> StoreFactory:
        shared = DictStorage()
        return lambda: KeyValueApprovalStore(shared)


def test_keys_are_the_request_id_and_a_hash_of_the_idempotency_key() -> None:
    storage = DictStorage()
    store = KeyValueApprovalStore(storage)
    store.create(routed("PO-7"), now=NOW)
    store.transition("PO-7", event="claim", actor_id="bob", actor_level="vp", now=NOW, idempotency_key="retry key " * 15)
    digest = hashlib.sha256(("retry key " * 15).encode()).hexdigest()
    assert sorted(storage.data) == ["holysheep:approval:PO-7", f"holysheep:approval:PO-7:idem:{digest}"]
    assert record_key("PO-7") == "holysheep:approval:PO-7"
    assert idempotency_key_of("PO-7", "retry key " * 15) == f"holysheep:approval:PO-7:idem:{digest}"
    stored = json.loads(storage.data["holysheep:approval:PO-7"])
    assert (stored["state"], stored["version"]) == ("under_review", 2)
    assert [entry["kind"] for entry in stored["history"]] == ["created", "transition"]


def test_a_carried_record_is_written_only_once_a_transition_changes_it() -> None:
    storage = DictStorage()
    store = KeyValueApprovalStore(storage, carried=lambda request_id: routed(request_id))
    refused = store.transition("REQ-1", event="approve", actor_id="bob", actor_level="manager", now=NOW)
    assert refused.code == "level_too_low" and storage.data == {}
    claimed = store.transition("REQ-1", event="claim", actor_id="bob", actor_level="vp", now=NOW)
    assert claimed.accepted and store.get("REQ-1") is not None
    # From now on the stored record wins over what the workflow carries.
    again = store.transition("REQ-1", event="claim", actor_id="bob", actor_level="vp", now=NOW)
    assert again.code == "illegal_transition" and again.state == "under_review"


def test_a_record_written_without_history_still_loads() -> None:
    storage = DictStorage()
    storage.set("holysheep:approval:OLD-1", json.dumps({**routed("OLD-1").to_dict(), "version": 4}).encode())
    store = KeyValueApprovalStore(storage)
    result = store.transition("OLD-1", event="claim", actor_id="bob", actor_level="vp", expected_version=4, now=NOW)
    assert (result.accepted, result.version) == (True, 5)
    assert [entry["kind"] for entry in store.history("OLD-1")] == ["transition"]


def test_without_compare_and_set_the_later_of_two_writers_wins() -> None:
    """The documented race: both read version 1, both write version 2."""
    storage = DictStorage()
    KeyValueApprovalStore(storage).create(routed())
    first, second = KeyValueApprovalStore(storage), KeyValueApprovalStore(storage)
    read = storage.get("holysheep:approval:REQ-1")
    approved = first.transition("REQ-1", event="approve", actor_id="bob", actor_level="vp", expected_version=1, now=NOW)
    storage.set("holysheep:approval:REQ-1", read)  # the second writer read before the first wrote
    rejected = second.transition("REQ-1", event="reject", actor_id="cy", actor_level="vp", expected_version=1, now=NOW)
    assert approved.accepted and rejected.accepted
    stored = first.get("REQ-1")
    assert stored is not None and (stored.state, stored.version) == ("rejected", 2)


def test_a_failing_storage_fails_closed_and_says_so() -> None:
    store = KeyValueApprovalStore(BrokenStorage())
    with pytest.raises(StoreUnavailable) as caught:
        store.transition("REQ-1", event="claim", actor_id="bob", actor_level="vp", now=NOW)
    message = str(caught.value)
    assert message.startswith("approval store unavailable: Dify plugin storage is unreachable (reading failed: RuntimeError")
    assert "fails closed" in message


def test_a_value_that_is_not_a_record_fails_closed() -> None:
    storage = DictStorage()
    storage.set("holysheep:approval:REQ-1", b"\x00\x01 not json")
    with pytest.raises(StoreUnavailable, match="is not an approval record"):
        KeyValueApprovalStore(storage).get("REQ-1")
