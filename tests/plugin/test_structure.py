"""The shape of what ships, as rules a change cannot quietly break: small files and functions, one file name
per concept, no service created at import time, and imports that only point down the layers.

Layers, top to bottom (a package may import only packages below it):
    main, provider, endpoints, tools  ->  services  ->  jobs  ->  specs  ->  approval  ->  gateway  ->  untrusted
Dev-only code (devtools, simulator, bench, tests) is never imported by what ships.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from devtools.package import plugin_files

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 60
DEV_ONLY = {"devtools", "simulator", "bench", "tests", "tests_workflow"}
# What each shipped top-level package may import (besides itself, the standard library and third parties).
MAY_IMPORT: dict[str, set[str]] = {
    "untrusted": set(),
    "gateway": {"untrusted"},
    "approval": {"gateway", "untrusted"},
    "specs": {"gateway", "untrusted", "approval"},
    "jobs": {"gateway", "untrusted", "specs"},
    "services": {"gateway", "jobs", "approval", "specs", "untrusted"},
    "tools": {"gateway", "jobs", "approval", "specs", "services", "untrusted", "tools"},
    "endpoints": {"gateway", "approval", "specs", "services", "untrusted"},  # endpoints are a Dify entry point, like tools
    "provider": {"gateway", "specs", "services", "tools", "untrusted"},
    "main": {"provider", "services", "jobs", "gateway"},
}


def shipped_python() -> list[Path]:
    return sorted(p for p in plugin_files(ROOT) if p.suffix == ".py")


def top_package(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return relative.parts[0].removesuffix(".py")


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
    return found


def test_what_ships_is_known_to_the_layer_rules() -> None:
    unknown = {top_package(p) for p in shipped_python()} - set(MAY_IMPORT)
    assert not unknown, f"add these shipped packages to MAY_IMPORT in this test, in their layer: {sorted(unknown)}"


def test_no_shipped_python_file_is_over_600_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in shipped_python() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES}
    assert not long, f"split these by concern: {long}"


def test_no_shipped_function_is_over_60_lines() -> None:
    long = []
    for path in shipped_python():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "split these into named steps:\n" + "\n".join(long)


def test_each_shipped_file_name_says_one_thing() -> None:
    names = Counter(p.name for p in shipped_python() if p.name != "__init__.py")
    shared = sorted(n for n, c in names.items() if c > 1)
    assert not shared, f"rename or merge the files that share a name: {shared}"


def test_tools_support_is_gone_or_small() -> None:
    support = ROOT / "tools" / "support.py"
    assert not support.exists() or len(support.read_text(encoding="utf-8").splitlines()) <= 150


def test_imports_point_down_the_layers_and_never_into_dev_only_code() -> None:
    wrong = []
    shipped_tops = set(MAY_IMPORT)
    for path in shipped_python():
        top = top_package(path)
        for imported in imported_packages(path):
            if imported in DEV_ONLY or (imported in shipped_tops and imported != top and imported not in MAY_IMPORT[top]):
                wrong.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_nothing_below_tools_imports_dify() -> None:
    below = {"untrusted", "gateway", "specs", "approval", "jobs", "services"}
    wrong = [str(p.relative_to(ROOT)) for p in shipped_python() if top_package(p) in below and "dify_plugin" in imported_packages(p)]
    assert not wrong, wrong


# Run in a process of its own: importing tools/ loads dify_plugin, whose gevent patching must not reach this session.
_FIND_SINGLETONS = r"""
import dataclasses, enum, importlib, json, re, sys
from pathlib import Path
root = Path(sys.argv[1]); sys.path.insert(0, str(root))
ours = ("gateway", "specs", "approval", "jobs", "services", "tools", "endpoints", "provider", "untrusted")
found, seen = [], set()
for name in json.loads(sys.argv[2]):
    module = importlib.import_module(name)
    for attr, value in vars(module).items():
        cls = type(value)
        if not cls.__module__.startswith(ours) or isinstance(value, type | enum.Enum | tuple | BaseException):
            continue
        params = getattr(cls, "__dataclass_params__", None)
        if (params is not None and params.frozen) or id(value) in seen:
            continue  # an immutable value, not a service (or one already reported under another name)
        seen.add(id(value))
        found.append(f"{name}.{attr} = {cls.__module__}.{cls.__qualname__}()")
print(json.dumps(found))
"""


# Module-level objects that stay, each with its reason (and each still present: see the test).
SINGLETON_EXCEPTIONS: dict[str, str] = {
    # Kept on purpose (issue 24's speed change reworked redaction and left this one): the last line of defence
    # redacts keys where nothing can be handed anything (the runtime's error reporting before and after the
    # wiring exists, tracebacks in the log), so it must not depend on services being installed; bounded
    # (MAX_KNOWN_SECRETS, least recently used dropped) and fed by every client that reads a key.
    "gateway.errors.KNOWN_SECRETS": "the process-wide redaction of known keys, read where nothing can be handed in",
}


def test_no_module_level_service_singletons() -> None:
    """Services (clients, stores, engines, registries, caches) are created by the plugin's wiring and handed in,
    never at import time: a module-level instance of a mutable class of ours is a singleton."""
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in shipped_python()
        if top_package(p) not in {"main"}
    ]
    out = subprocess.run(
        [sys.executable, "-c", _FIND_SINGLETONS, str(ROOT), json.dumps(modules)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = {line.split(" = ")[0]: line for line in json.loads(out.stdout)}
    unexcused = [line for name, line in found.items() if name not in SINGLETON_EXCEPTIONS]
    assert not unexcused, "create these in services.py and hand them in:\n" + "\n".join(unexcused)
    assert SINGLETON_EXCEPTIONS.keys() <= found.keys(), "drop the exceptions that are gone from the code"


def test_tests_are_sorted_by_what_they_specify() -> None:
    """One way: tests/<package>/ for each shipped package it specifies, tests/plugin/ for the plugin as Dify runs it
    (through python -m main, the package, the docs), tests/devtools/ for the dev-only tools. How a test runs
    (the real Redis, the Redis Cluster, the runtime) is a marker, not a folder."""
    areas = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}
    allowed = {top for top in MAY_IMPORT if (ROOT / top).is_dir()} | {"plugin", "devtools", "golden"}
    assert areas <= allowed, f"tests/ folders that are not an area: {sorted(areas - allowed)}"
