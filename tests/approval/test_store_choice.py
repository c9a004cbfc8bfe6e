"""approval.store_choice: the one place that picks where approval records live, and the import layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from approval.kv_store import KeyValueApprovalStore
from approval.records import MemoryApprovalStore
from approval.store_choice import DIFY_STORAGE, REDIS, WORKFLOW, store_for
from gateway.state.keys import Keys
from tests.approval.store_contract import routed
from tests.approval.test_kv_store import DictStorage

APPROVAL = Path(__file__).resolve().parents[2] / "approval"


@pytest.mark.parametrize("url", [None, "", "   "])
def test_without_redis_or_storage_the_workflow_carries_the_record(url: str | None) -> None:
    chosen = store_for(url, carried=routed)
    assert chosen.name == WORKFLOW and not chosen.keeps_records
    assert isinstance(chosen.store, MemoryApprovalStore)


def test_with_storage_the_record_is_kept_in_it() -> None:
    storage = DictStorage()
    chosen = store_for("", storage=storage, carried=routed)
    assert chosen.name == DIFY_STORAGE and chosen.keeps_records
    assert isinstance(chosen.store, KeyValueApprovalStore) and chosen.store.storage is storage


def test_redis_wins_over_storage() -> None:
    chosen = store_for(" redis://127.0.0.1:6379/14 ", keys=Keys("w1"), storage=DictStorage())
    assert chosen.name == REDIS and chosen.keeps_records


def test_a_url_redis_cannot_read_is_a_value_error_naming_redis_url() -> None:
    with pytest.raises(ValueError, match=r"^redis_url: not a Redis URL"):
        store_for("redis://:secret@host:notaport/0", keys=Keys("w1"))


def imports_of(path: Path) -> set[str]:
    """Modules a file imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_approval_has_no_import_cycles_and_imports_only_the_redis_helper_and_keys_from_gateway() -> None:
    graph = {
        f"approval.{path.stem}": {name for name in imports_of(path) if name.startswith("approval.")}
        for path in APPROVAL.glob("*.py")
    }
    for path in APPROVAL.glob("*.py"):
        outside = {name.split(".")[0] for name in imports_of(path)} & {"gateway", "tools", "dify_plugin"}
        gateway = {name for name in imports_of(path) if name.startswith("gateway")}
        assert outside <= {"gateway"} and gateway <= {"gateway.state.redis_connection", "gateway.state.keys"}, (path.name, outside, gateway)

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(
            name == target or (name not in seen and reaches(name, target, seen | {name})) for name in graph.get(start, ())
        )

    cycles = [module for module in graph if reaches(module, module, {module})]
    assert cycles == []
    # Interface modules never import the backends built on them.
    assert "approval.redis_store" not in graph["approval.records"] and "approval.kv_store" not in graph["approval.records"]
