"""One module names every shared-state key (`gateway.state.keys`): no other file spells the prefix, so no
key can be written outside the workspace's scope or its hash tag by a name made up elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS_MODULE = "gateway/state/keys.py"
# Files other helpers of issue 21 are moving onto gateway.state.keys at the same time (approval records, metrics,
# and their tests). The lead empties this once their branches are merged.
PENDING_ISSUE_21: set[str] = set()  # every file of issue 21 now names its keys through gateway.state.keys
# A key name spelled out, or built from a prefix of a module's own (or from gateway.state.keys.PREFIX, around Keys).
SPELLED = re.compile(r"holysheep:|\{PREFIX\}:|^\s*PREFIX\s*=\s*[\"']holysheep", re.MULTILINE)
# Tests may build names from gateway.state.keys.PREFIX to check them; only these spell the old names themselves.
# and these check the names as they are stored (Dify plugin storage keeps its pre-scoping names; a
# record's hash tag is part of its contract with Redis Cluster).
LEGACY_TESTS = {
    "tests/devtools/test_legacy_cleanup.py",
    "tests/gateway/test_one_key_module.py",
    "tests/approval/test_kv_store.py",
    "tests/approval/test_redis_store.py",
    "tests/plugin/test_approval_through_runtime.py",
    "tests/gateway/test_workspace_scope.py",
}


def python_files() -> list[str]:
    relative = (path.relative_to(ROOT) for path in ROOT.rglob("*.py"))
    return sorted(str(path) for path in relative if not any(part in ("build", "dist") or part.startswith(".") for part in path.parts))


def test_only_the_keys_module_spells_a_key_name() -> None:
    files = python_files()
    assert KEYS_MODULE in files and "jobs/store.py" in files  # the walk sees the project
    def spells(name: str) -> bool:
        text = (ROOT / name).read_text(encoding="utf-8")
        if name.startswith("tests/"):
            return "holysheep:" in text and name not in LEGACY_TESTS
        return bool(SPELLED.search(text))

    spelling = {name for name in files if spells(name)}
    assert spelling - PENDING_ISSUE_21 == {KEYS_MODULE}, sorted(spelling - PENDING_ISSUE_21)


def test_the_check_catches_each_way_of_spelling_a_key() -> None:
    for text in ('KEY = "holysheep:jobs:open"', 'name = f"{PREFIX}:budget:{key}"', 'PREFIX = "holysheep"'):
        assert SPELLED.search(text), text
    for text in ('logger = logging.getLogger("holysheep.jobs")', 'PROVIDER = "holysheep"', "keys.budget(charge.key)"):
        assert not SPELLED.search(text), text
