"""Every example imports cleanly: graphon's DSL loader (the one Dify's engine ships) accepts it as an
executable app, it declares the current DSL version and a dependency on this plugin, and its graph
builds with every node validated by graphon's own node data models."""

import re
from pathlib import Path

import pytest
import yaml
from graphon.dsl import DslError, inspect

from tests_workflow.harness import (
    EXAMPLES,
    MANIFEST,
    PLUGIN_ID,
    PLUGIN_UNIQUE_IDENTIFIER,
    PluginDaemon,
    check_loadable,
    load_engine,
    run_workflow,
)

# The DSL version Dify exports (langgenius/dify api/constants/dsl_version.py, CURRENT_APP_DSL_VERSION).
CURRENT_DSL_VERSION = "0.6.0"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yml"))


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLE_FILES} >= {"approval_workflow.yml", "chatflow_streaming.yml", "batch_retry_failed.yml"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_is_a_current_dify_export_that_depends_on_this_plugin(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert document["kind"] == "app" and document["version"] == CURRENT_DSL_VERSION
    assert document["app"]["mode"] in ("workflow", "advanced-chat")
    # Dify's PluginDependency: type package, value.plugin_unique_identifier author/name:version@checksum
    # (the daemon's /management/installation/missing refuses it without the checksum).
    assert re.fullmatch(rf"{re.escape(PLUGIN_ID)}:{re.escape(MANIFEST['version'])}@[0-9a-f]{{64}}", PLUGIN_UNIQUE_IDENTIFIER)
    dependencies = document["dependencies"]
    assert dependencies == [
        {"current_identifier": None, "type": "package",
         "value": {"plugin_unique_identifier": PLUGIN_UNIQUE_IDENTIFIER, "version": MANIFEST["version"]}}
    ]
    tools = [n["data"] for n in document["workflow"]["graph"]["nodes"] if n["data"]["type"] == "tool"]
    assert tools
    for tool in tools:
        assert tool["provider_id"] == tool["provider_name"] == f"{PLUGIN_ID}/holysheep"
        assert tool["plugin_unique_identifier"] == PLUGIN_UNIQUE_IDENTIFIER


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_graphon_loads_the_example(path: Path) -> None:
    dsl = path.read_text(encoding="utf-8")
    check_loadable(dsl)
    plan = inspect(dsl)
    assert [d.plugin_unique_identifier for d in plan.dependencies] == [PLUGIN_UNIQUE_IDENTIFIER]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_graphon_builds_every_node_of_the_example(path: Path, plugin, credentials) -> None:
    """`loads` builds the whole graph (every node's data validated, every tool node's plugin resolved
    from `dependencies`); a run with an empty form then stops at Dify's input check, before any node."""
    dsl = path.read_text(encoding="utf-8")
    document = yaml.safe_load(dsl)
    required = [v["variable"] for n in document["workflow"]["graph"]["nodes"] if n["data"]["type"] == "start"
                for v in n["data"].get("variables", []) if v.get("required")]
    if required:
        with pytest.raises(ValueError, match="is required in input form"):
            run_workflow(dsl, {}, plugin=plugin, credentials=credentials)
    daemon = PluginDaemon(plugin)
    engine = load_engine(dsl, daemon=daemon, credentials=credentials)
    node_types = {str(node.node_type) for node in engine.graph.nodes.values()}
    assert "tool" in node_types and ("end" in node_types or "answer" in node_types)
    assert not daemon.calls  # building a graph calls no tool


def test_without_the_dependencies_entry_graphon_cannot_bind_the_tool_nodes(plugin, credentials) -> None:
    """The `dependencies:` entry is what ties a tool node to this plugin (Dify offers to install it)."""
    document = yaml.safe_load((EXAMPLES / "approval_workflow.yml").read_text(encoding="utf-8"))
    document["dependencies"] = []
    with pytest.raises(DslError) as refused:
        load_engine(yaml.safe_dump(document), daemon=PluginDaemon(plugin), credentials=credentials)
    assert refused.value.code == "dependency.missing_plugin"
