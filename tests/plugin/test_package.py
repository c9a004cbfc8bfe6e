"""The .difypkg builder: what the daemon would refuse is refused with a message; what it builds
unpacks into an empty directory and runs under the runtime."""

import re
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from devtools.package import PackageRefused, build, package_checksum, plugin_files, unique_identifier
from devtools.plugin_process import REPO_ROOT, PluginProcess
from simulator.harness import SimulatorProcess


@pytest.fixture
def plugin_copy(tmp_path: Path) -> Path:
    """The plugin as it would be packaged, in a scratch directory we can break."""
    root = tmp_path / "plugin"
    for path in plugin_files(REPO_ROOT):
        target = root / path.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    shutil.copy2(REPO_ROOT / ".difyignore", root / ".difyignore")
    return root


def test_built_package_unpacks_and_starts_under_the_runtime(tmp_path: Path) -> None:
    built = build(REPO_ROOT, tmp_path / "dist")
    assert built.path.name == "holysheep-0.1.0.difypkg"
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(built.path) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    assert "manifest.yaml" in names and "_assets/icon.svg" in names and "gateway/data/prices.yaml" in names
    assert not [n for n in names if n.startswith(("tests/", "simulator/", "devtools/", ".venv/", ".git/")) or "__pycache__" in n]
    assert not [n for n in names if n == ".env" or n.endswith((".pyc", ".log"))]
    with SimulatorProcess() as sim, PluginProcess(unpacked) as plugin:
        creds = {"api_key": sim.api_key, "base_url": sim.base_url}
        assert plugin.validate(creds) == (True, "")
        outcome = plugin.run_tool("chat", {"prompt": "from the package"}, creds)
        assert outcome.text == "[deepseek-v3.2] You said: from the package"


def edit_manifest(root: Path, **changes: object) -> None:
    manifest = yaml.safe_load((root / "manifest.yaml").read_text())
    manifest.update(changes)
    (root / "manifest.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda root: edit_manifest(root, author="HolySheep"), "lower case"),
        (lambda root: edit_manifest(root, author="dify-fan"), "must not contain 'dify'"),
        (lambda root: edit_manifest(root, version="v1"), "semantic versioning"),
        (lambda root: (root / "_assets" / "icon.svg").unlink(), "icon 'icon.svg' is missing"),
        (lambda root: (root / "PRIVACY.md").unlink(), "privacy file"),
        (lambda root: (root / "requirements.txt").unlink(), "requirements.txt"),
        (lambda root: (root / "gateway" / "big.bin").write_bytes(b"\0" * (51 * 1024 * 1024)), "50 MB"),
    ],
)
def test_what_the_daemon_would_refuse_is_refused_with_a_reason(plugin_copy: Path, tmp_path: Path, breakage, message: str) -> None:
    breakage(plugin_copy)
    with pytest.raises(PackageRefused, match=message.replace(".", r"\.").replace("(", r"\(")):
        build(plugin_copy, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_more_than_5000_files_is_refused(plugin_copy: Path, tmp_path: Path) -> None:
    many = plugin_copy / "gateway" / "data" / "many"
    many.mkdir()
    for i in range(5001):
        (many / f"{i}.txt").write_text("x")
    with pytest.raises(PackageRefused, match="at most 5000"):
        build(plugin_copy, tmp_path / "out")


def test_secrets_and_caches_are_refused_even_when_the_ignore_file_forgets_them(plugin_copy: Path, tmp_path: Path) -> None:
    (plugin_copy / ".difyignore").write_text("tests/\n")
    (plugin_copy / ".env").write_text("REMOTE_INSTALL_KEY=secret\n")
    (plugin_copy / "gateway" / "__pycache__").mkdir(exist_ok=True)
    (plugin_copy / "gateway" / "__pycache__" / "x.pyc").write_bytes(b"")
    with pytest.raises(PackageRefused) as refused:
        build(plugin_copy, tmp_path / "out")
    assert ".env must not be shipped" in str(refused.value) and "__pycache__" in str(refused.value)


def test_examples_depend_on_the_package_built_from_this_tree(tmp_path: Path) -> None:
    """Dify's DSL import checks a dependency by author/name:version@checksum (the daemon refuses it
    without the checksum); a stale one means the examples were not synced: run ./dev sync-examples."""
    built = build(REPO_ROOT, tmp_path / "dist")
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(unpacked)
    files = [p for p in unpacked.rglob("*") if p.is_file()]
    identifier = unique_identifier(REPO_ROOT)
    assert identifier.endswith("@" + package_checksum(unpacked, files))  # the daemon's checksum of the zip itself
    manifest = yaml.safe_load((REPO_ROOT / "manifest.yaml").read_text())
    assert identifier.startswith(f"{manifest['author']}/{manifest['name']}:{manifest['version']}@")
    for example in sorted((REPO_ROOT / "examples").glob("*.yml")):
        found = set(re.findall(r"plugin_unique_identifier:\s*(\S+)", example.read_text(encoding="utf-8")))
        assert found == {identifier}, f"{example.name}: run ./dev sync-examples"
