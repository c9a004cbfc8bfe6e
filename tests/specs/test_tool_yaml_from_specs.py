"""The tool YAML's parameter blocks are generated from the specs' declarations (`./dev sync-models`):
a YAML that disagrees with the specs, in text or in meaning, fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from devtools.model_options import model_options, parameters_yaml
from specs.tool_parameters import TOOL_PARAMETERS

ROOT = Path(__file__).resolve().parents[2]


def yaml_text(tool: str) -> str:
    return (ROOT / "tools" / f"{tool}.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("tool", sorted(TOOL_PARAMETERS))
def test_the_parameters_block_is_the_one_generated_from_the_specs(tool: str) -> None:
    block = re.search(r"^parameters:\n(?:[ -].*\n|\n)*", yaml_text(tool), re.MULTILINE)
    assert block is not None, f"tools/{tool}.yaml has no parameters block"
    assert block.group(0) == parameters_yaml(tool), f"tools/{tool}.yaml disagrees with specs/: run ./dev sync-models"


@pytest.mark.parametrize("tool", sorted(TOOL_PARAMETERS))
def test_the_yaml_declares_what_the_specs_declare(tool: str) -> None:
    declared = yaml.safe_load(yaml_text(tool))["parameters"]
    assert declared == [param.as_yaml(model_options()) for param in TOOL_PARAMETERS[tool]]


def test_a_changed_declaration_is_caught() -> None:
    from dataclasses import replace

    chat = TOOL_PARAMETERS["chat"]
    changed = [replace(chat[0], required=False), *chat[1:]]
    assert yaml.safe_load(yaml_text("chat"))["parameters"] != [param.as_yaml(model_options()) for param in changed]


def test_the_shared_chat_parameters_are_one_declaration_each() -> None:
    for name in ("system_prompt", "model", "custom_model", "temperature", "max_tokens", "json_output", "json_schema", "cache"):
        found = {id(p) for tool in ("chat", "stream_chat", "batch_chat") for p in TOOL_PARAMETERS[tool] if p.name == name}
        assert len(found) == 1, name
