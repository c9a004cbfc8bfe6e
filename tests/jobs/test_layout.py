"""The jobs package's shape: files at most 600 lines, functions at most 60, no import cycles between its
modules, and no engine created at import (the process's wiring creates it: `services.py`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import services

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "jobs"


def test_no_file_over_600_lines_and_no_function_over_60() -> None:
    too_long = []
    for path in sorted([*JOBS.glob("*.py"), ROOT / "services.py", ROOT / "main.py"]):
        source = path.read_text(encoding="utf-8")
        if source.count("\n") > 600:
            too_long.append(f"{path.name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60:
                too_long.append(f"{path.name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long


def jobs_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jobs."):
            found.add(node.module)
    return found - {f"jobs.{path.stem}"}


def test_no_import_cycles_between_job_modules() -> None:
    edges = {f"jobs.{p.stem}": jobs_imports(p) for p in JOBS.glob("*.py")}

    def visit(module: str, path: list[str]) -> None:
        for dep in edges.get(module, set()):
            assert dep not in path, " -> ".join([*path, dep])
            visit(dep, [*path, dep])

    for module in edges:
        visit(module, [module])


def test_importing_the_plugin_modules_creates_no_engine() -> None:
    # A JobEngine made at import would be a second engine beside the one main.py installs (its workers
    # unknown to the shutdown hooks). Checked in a fresh interpreter: this session's imports don't count.
    probe = (
        "import gc, services, jobs.service, jobs.lifecycle, tools.batch_submit, tools.batch_status, tools.batch_results, tools.batch_cancel\n"
        "from jobs.queue import JobEngine\n"
        "print(sum(isinstance(o, JobEngine) for o in gc.get_objects()))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "0"


def test_current_says_what_to_do_when_nothing_was_installed() -> None:
    services.uninstall()
    with pytest.raises(RuntimeError, match=r"no services installed in this process: main\.py installs them"):
        services.current()


def test_current_is_what_was_installed() -> None:
    installed = services.install(services.Services.create())
    try:
        assert services.current() is installed and services.current().jobs is installed.jobs
    finally:
        services.uninstall()
