"""Build `holysheep-<version>.difypkg`: a zip of the plugin directory filtered by `.difyignore`,
refusing with a clear message whatever the Dify daemon or marketplace would refuse.

    ./dev package [--output dist/]     also rewrites the examples' dependency identifiers
    ./dev sync-examples                only rewrites them

Dify's DSL import checks a plugin dependency by `author/name:version@<checksum>` (the daemon's
/management/installation/missing refuses one without the checksum). The checksum is the daemon's
(pkg/plugin_packager/decoder/checksum.go): sha256 over the package's files sorted by path, each as
sha256(path) + sha256(content), so it depends on the shipped files only, not on zip timestamps.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pathspec
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 50 * 1024 * 1024
MAX_FILES = 5000
NAME_PATTERN = re.compile(r"^[a-z0-9_-]{1,128}$")
AUTHOR_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
# Never shipped, whatever .difyignore says: secrets, environments and caches.
FORBIDDEN_PARTS = {".env", ".venv", "venv", "__pycache__", ".git"}
FORBIDDEN_SUFFIXES = (".pyc", ".log")


class PackageRefused(Exception):
    """The package would be refused by the daemon or the marketplace; the message says why."""


@dataclass(frozen=True)
class BuiltPackage:
    path: Path
    files: int
    uncompressed_bytes: int


def plugin_files(root: Path) -> list[Path]:
    ignore_file = root / ".difyignore"
    if not ignore_file.exists():
        ignore_file = root / ".gitignore"  # the daemon's rule: .gitignore only when .difyignore is missing
    lines = ignore_file.read_text().splitlines() if ignore_file.exists() else []
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_dir() or spec.match_file(relative):
            continue
        if any(part in (".git", ".venv") for part in path.relative_to(root).parts):
            continue
        files.append(path)
    return files


def check(root: Path, files: list[Path]) -> dict:
    manifest_path = root / "manifest.yaml"
    if not manifest_path.exists():
        raise PackageRefused("manifest.yaml is missing at the plugin root")
    manifest = yaml.safe_load(manifest_path.read_text()) or {}
    problems = []
    name, author, version = str(manifest.get("name", "")), str(manifest.get("author", "")), str(manifest.get("version", ""))
    if not NAME_PATTERN.match(name):
        problems.append(f"manifest name '{name}' must match {NAME_PATTERN.pattern}")
    if not AUTHOR_PATTERN.match(author):
        problems.append(f"manifest author '{author}' must be lower case letters, digits, '_' or '-' (the daemon refuses it)")
    if "dify" in author or "langgenius" in author:
        problems.append(f"manifest author '{author}' must not contain 'dify' or 'langgenius' (marketplace rule)")
    if not SEMVER.match(version):
        problems.append(f"manifest version '{version}' is not semantic versioning (e.g. 0.1.0)")
    icon = str(manifest.get("icon", ""))
    if not icon or not (root / "_assets" / icon).is_file():
        problems.append(f"icon '{icon}' is missing from _assets/")
    privacy = str(manifest.get("privacy", ""))
    if not privacy or not (root / privacy).is_file() or not (root / privacy).read_text().strip():
        problems.append(f"privacy file '{privacy or 'PRIVACY.md'}' is missing or empty (marketplace rule)")
    if not (root / "requirements.txt").exists() and not (root / "pyproject.toml").exists():
        problems.append("requirements.txt (or pyproject.toml) is missing: the daemon cannot install dependencies")
    if not int((manifest.get("resource") or {}).get("memory") or 0):
        problems.append("manifest resource.memory must be non-zero")
    for path in files:
        parts = path.relative_to(root).parts
        if FORBIDDEN_PARTS.intersection(parts) or (path.name.startswith(".env.") and path.name != ".env.example"):
            problems.append(f"{path.relative_to(root)} must not be shipped (secrets, environments or caches): add it to .difyignore")
        elif path.suffix in FORBIDDEN_SUFFIXES:
            problems.append(f"{path.relative_to(root)} must not be shipped: add *{path.suffix} to .difyignore")
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files: a package may hold at most {MAX_FILES}")
    total = sum(path.stat().st_size for path in files)
    if total > MAX_BYTES:
        problems.append(f"{total / 1e6:.1f} MB uncompressed: a package may be at most 50 MB")
    if problems:
        raise PackageRefused("refusing to build the package:\n  - " + "\n  - ".join(problems))
    return manifest


def build(root: Path = REPO_ROOT, output_dir: Path | None = None) -> BuiltPackage:
    root = root.resolve()
    files = plugin_files(root)
    manifest = check(root, files)
    output_dir = (output_dir or root / "dist").resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{manifest['name']}-{manifest['version']}.difypkg"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(root).as_posix())
    return BuiltPackage(target, len(files), sum(path.stat().st_size for path in files))


def package_checksum(root: Path, files: list[Path]) -> str:
    """The daemon's checksum of a package holding `files` (see the module's docstring)."""
    entries = sorted((path.relative_to(root).as_posix(), path.read_bytes()) for path in files)
    data = b"".join(hashlib.sha256(name.encode()).digest() + hashlib.sha256(content).digest() for name, content in entries)
    return hashlib.sha256(data).hexdigest()


def unique_identifier(root: Path = REPO_ROOT) -> str:
    """`author/name:version@checksum` of the package built from `root`, as Dify's own DSL export writes it."""
    root = root.resolve()
    files = plugin_files(root)
    manifest = check(root, files)
    return f"{manifest['author']}/{manifest['name']}:{manifest['version']}@{package_checksum(root, files)}"


IDENTIFIER_LINE = re.compile(r"^(\s*plugin_unique_identifier:\s*)(\S+)\s*$", re.MULTILINE)


def sync_examples(root: Path = REPO_ROOT) -> list[Path]:
    """Rewrite every example DSL's plugin_unique_identifier of this plugin to `unique_identifier()`; the
    files changed. Other plugins' identifiers are left alone."""
    identifier = unique_identifier(root)
    plugin = identifier.split(":", 1)[0]
    changed = []
    for path in sorted((root / "examples").glob("*.yml")):
        text = path.read_text(encoding="utf-8")
        new = IDENTIFIER_LINE.sub(lambda m: m.group(1) + identifier if m.group(2).split(":", 1)[0] == plugin else m.group(0), text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev package", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="plugin directory")
    parser.add_argument("--output", type=Path, default=None, help="output directory (default: dist/)")
    parser.add_argument("--sync-examples-only", action="store_true", help="only rewrite the examples' identifiers")
    args = parser.parse_args(argv)
    try:
        changed = sync_examples(args.root)
        for path in changed:
            print(f"updated the plugin identifier in {path.relative_to(args.root.resolve())}")
        if args.sync_examples_only:
            print(unique_identifier(args.root))
            return 0
        built = build(args.root, args.output)
    except PackageRefused as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"wrote {built.path} ({built.files} files, {built.uncompressed_bytes / 1e6:.2f} MB uncompressed)")
    print("Install it in Dify: Plugins > Install plugin > Local package file. Self-hosted Dify refuses unsigned")
    print("packages unless FORCE_VERIFYING_SIGNATURE=false is set in its docker .env (see README).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
