"""The README is a user guide that stays true: short, every command it gives exists, every page and
example it links exists, and its credentials table names every credential the provider asks for."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_a_guide_of_at_most_250_lines() -> None:
    lines = README.splitlines()
    assert len(lines) <= 250
    first_80 = "\n".join(lines[:80])
    assert "## Install" in first_80 and "## A first workflow" in first_80  # install to a first workflow


def test_every_dev_command_in_the_readme_exists() -> None:
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    commands = set(re.findall(r"\./dev ([a-z][a-z-]*)", README))
    assert {"demo", "test", "run", "package"} <= commands
    for command in commands:
        assert re.search(rf"^\s+{re.escape(command)}\)", dev, re.MULTILINE), f"./dev {command} is not a dev command"


def test_every_linked_page_and_example_exists() -> None:
    targets = set(re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)) | set(re.findall(r"`(examples/[\w.]+)`", README))
    assert any(t.startswith("docs/") for t in targets)
    for target in targets:
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links {target}, which does not exist"
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in README, f"{page.name} is not linked from the README"


def test_the_credentials_table_names_every_credential() -> None:
    provider = yaml.safe_load((ROOT / "provider" / "holysheep.yaml").read_text(encoding="utf-8"))
    rows = set(re.findall(r"^\| `(\w+)` \|", README, re.MULTILINE))
    assert set(provider["credentials_for_provider"]) <= rows


def test_every_tool_is_named_in_the_readme() -> None:
    provider = yaml.safe_load((ROOT / "provider" / "holysheep.yaml").read_text(encoding="utf-8"))
    for path in provider["tools"]:
        name = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))["identity"]["name"]
        assert f"**{name}**" in README, f"the README's tool table does not name {name}"
