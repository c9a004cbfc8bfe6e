"""The gateway's module structure: no import cycles, backends chosen in one place, no Dify below tools/,
and the client holds the chain and the public API only (no HTTP send, no SSE parsing)."""

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


def test_nothing_in_gateway_imports_dify() -> None:
    for path in gateway_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("dify_plugin"), path.name
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith("dify_plugin") for alias in node.names), path.name


def test_the_client_neither_speaks_http_nor_parses_sse() -> None:
    source = (GATEWAY / "client.py").read_text(encoding="utf-8")
    imported = {n.names[0].name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)}
    assert not imported & {"requests", "urllib3", "json"}
    assert "SSEDecoder" not in source and "read1" not in source
