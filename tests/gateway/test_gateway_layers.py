"""The gateway's module structure: no import cycles, backends chosen in one place, no Dify below tools/,
and the client holds the chain and the public API only (no HTTP send, no SSE parsing).

And its layout (issue 24, GATEWAY_LAYOUT.md): a few top-level modules (the public API and shared types)
over sub-packages by concern (wire: transport and stream decoding; call: the call chain; spend; state:
shared state; metrics); arrows point from the top level down into the sub-packages, never back up."""

from __future__ import annotations

import ast
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"


def module_name(path: Path) -> str:
    parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def gateway_files() -> list[Path]:
    return sorted(GATEWAY.rglob("*.py"))


def gateway_imports(path: Path) -> set[str]:
    """Every gateway module `path` imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gateway"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("gateway")}
    return found - {module_name(path), "gateway"}


def graph() -> dict[str, set[str]]:
    return {module_name(p): gateway_imports(p) for p in gateway_files()}


def test_no_import_cycles_in_gateway() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for dep in edges.get(module, set()):
            assert dep not in path, " -> ".join([*path, dep])
            if dep not in done:
                visit(dep, [*path, dep])
        done.add(module)

    for module in edges:
        visit(module, [module])


def test_only_backends_chooses_between_in_process_and_redis_state() -> None:
    importers = {m for m, deps in graph().items() if "gateway.state.redis_state" in deps}
    assert importers == {"gateway.state.backends"}
    assert "gateway.state.redis_state" not in gateway_imports(GATEWAY / "state" / "shared.py")


def test_the_client_neither_speaks_http_nor_parses_sse() -> None:
    source = (GATEWAY / "client.py").read_text(encoding="utf-8")
    imported = {n.names[0].name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)}
    assert not imported & {"requests", "urllib3", "json"}
    assert "SSEDecoder" not in source and "read1" not in source


# ----------------------------------------------------------------------------- layout

TOP_LEVEL = {"__init__", "client", "config", "errors", "models"}  # the public API and shared types
# Each sub-package and the modules it holds at least (new ones may join; none may leave to the top).
SUBPACKAGES: dict[str, set[str]] = {
    "wire": {"transport", "http_transport", "sse", "stream_events", "reasoning", "net_guard", "file_fetch", "webhooks"},
    "call": {"retry", "breaker", "rate_limits", "pacing", "routing", "batch", "native_batch", "chat_results"},
    "spend": {"budget", "redis_budget", "pricing", "tokens", "cache"},
    "state": {"keys", "redis_connection", "redis_state", "shared", "backends"},
    "metrics": {"catalog", "calls", "process_store", "redis_metrics", "prometheus"},
}
# Top-level modules that import sub-packages, and which: the client composes them and __init__ re-exports
# them; config parses the settings whose types and checks live there (budgets, the reply cache's TTLs,
# network origins, the webhook allowlist, the Redis URL) and derives the workspace's keys.
TOP_LEVEL_MAY_IMPORT: dict[str, set[str] | None] = {
    "gateway": None,  # anything
    "gateway.client": None,
    "gateway.config": {
        "gateway.state.keys", "gateway.spend.pricing", "gateway.spend.budget", "gateway.spend.cache",
        "gateway.wire.net_guard", "gateway.wire.webhooks", "gateway.state.redis_connection",
    },
}
# Sub-package modules that import the client: none (batch, which runs many client calls, names what it
# uses of the client in a Protocol, `gateway.call.batch.BatchClient`).
ABOVE_THE_CLIENT: set[str] = set()
OUTSIDE = ("dify_plugin", "tools", "jobs", "approval")


def every_import(path: Path) -> set[str]:
    """Every module `path` imports (absolute names, `gateway` itself included), at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def in_subpackage(module: str) -> bool:
    parts = module.split(".")
    return len(parts) > 1 and parts[1] in SUBPACKAGES


def test_the_top_level_holds_the_public_api_and_shared_types_only() -> None:
    assert {path.stem for path in GATEWAY.glob("*.py")} == TOP_LEVEL
    folders = {path.name for path in GATEWAY.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders == {*SUBPACKAGES, "data"}


def test_each_subpackage_holds_its_modules() -> None:
    for package, modules in SUBPACKAGES.items():
        present = {path.stem for path in (GATEWAY / package).glob("*.py")}
        assert modules | {"__init__"} <= present, (package, sorted(modules - present))
        assert not list((GATEWAY / package).glob("*/__init__.py")), package  # one level of sub-packages


def test_subpackage_inits_are_one_line_docstrings_except_metrics() -> None:
    for package in SUBPACKAGES.keys() - {"metrics"}:
        tree = ast.parse((GATEWAY / package / "__init__.py").read_text(encoding="utf-8"))
        assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), package  # no imports, no re-exports
        docstring = ast.get_docstring(tree)
        assert docstring and "\n" not in docstring, package


def test_the_top_level_imports_subpackages_only_from_the_client_init_and_config() -> None:
    for path in GATEWAY.glob("*.py"):
        module = module_name(path)
        reached = {name for name in every_import(path) if name.startswith("gateway.") and in_subpackage(name)}
        allowed = TOP_LEVEL_MAY_IMPORT.get(module, set())
        if allowed is not None:
            assert reached <= allowed, (module, sorted(reached - allowed))


def test_subpackages_never_import_the_client_or_the_package_above() -> None:
    importers: set[str] = set()
    for path in gateway_files():
        module = module_name(path)
        if not in_subpackage(module):
            continue
        imported = every_import(path)
        assert "gateway" not in imported, module  # gateway/__init__ is the client's public API
        if "gateway.client" in imported:
            importers.add(module)
    assert importers == ABOVE_THE_CLIENT  # and each exception is still needed


def test_nothing_in_gateway_imports_dify_tools_jobs_or_approval() -> None:
    for path in gateway_files():
        roots = {name.split(".")[0] for name in every_import(path)}
        assert not roots & set(OUTSIDE), (module_name(path), sorted(roots & set(OUTSIDE)))


def test_the_layout_checks_catch_what_they_forbid(tmp_path: Path) -> None:
    source = tmp_path / "upward.py"
    source.write_text("from gateway import GatewayClient\nimport jobs.engine\nfrom gateway.client import CallOptions\n", encoding="utf-8")
    assert every_import(source) == {"gateway", "jobs.engine", "gateway.client"}
    assert in_subpackage("gateway.wire.sse") and in_subpackage("gateway.spend") and not in_subpackage("gateway.config")
    assert not in_subpackage("gateway")
