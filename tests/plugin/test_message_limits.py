"""Whatever the size of a reply or a batch, every message fits the daemon's 5 MiB line and the Dify API
accepts it (the plugin process checks every line and message); nothing is lost on the way."""

import json
from typing import Any

from devtools.dify_api_rules import MAX_LINE_BYTES
from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess


def joined_results(outcome: Any) -> list[dict[str, Any]]:
    """How a workflow reads every result in full: the node's `json` parts, in order, entries of one id joined."""
    summary, *parts = outcome.json
    assert summary["results_parts"] == len(parts) and [p["results_part"] for p in parts] == list(range(1, len(parts) + 1))
    results: list[dict[str, Any]] = []
    for part in parts:
        for entry in part["results"]:
            if results and results[-1].get("text_continued"):
                results[-1] = {**entry, "text": results[-1]["text"] + entry["text"]}
            else:
                results.append(entry)
    return results


def test_a_thousand_failing_items_of_10_kb_come_back_complete(plugin: PluginProcess, sim: SimulatorProcess, credentials) -> None:
    prompts = [{"id": f"row-{n}", "prompt": f"{n:04d} " + "x" * 10_000 + " [[sim: 400x1]]"} for n in range(1000)]
    outcome = plugin.run_tool("batch_chat", {"prompts": json.dumps(prompts), "concurrency": 50}, credentials, timeout=300)
    assert outcome.ok, outcome.error
    variables = outcome.variables
    assert variables["failed"] == 1000 and [r["id"] for r in variables["results"]] == [p["id"] for p in prompts]
    # failed_items (10 MB) is streamed in chunks that Dify joins: it is every input, ready to feed back in.
    assert json.loads(variables["failed_items"]) == prompts
    assert len([m for m in outcome.messages if m["type"] == "variable" and m["message"]["variable_name"] == "failed_items"]) > 1
    assert plugin.largest_line < MAX_LINE_BYTES


def test_a_thousand_replies_of_8_kb_are_all_in_the_json_parts(plugin: PluginProcess, sim: SimulatorProcess, credentials) -> None:
    prompts = [f"{n:04d} " + "y" * 8_000 for n in range(1000)]
    outcome = plugin.run_tool("batch_chat", {"prompts": json.dumps(prompts), "concurrency": 50}, credentials, timeout=300)
    assert outcome.ok, outcome.error
    full = joined_results(outcome)
    assert [r["text"] for r in full] == [f"[deepseek-v3.2] You said: {p}" for p in prompts]
    assert len(outcome.json) > 2  # 8 MB of replies: more than one part
    # The `results` variable fits one message: every item, with its text shortened and flagged.
    shortened = outcome.variables["results"]
    assert len(shortened) == 1000 and all(r["text_truncated"] for r in shortened)
    assert all(f["text"].startswith(r["text"]) for f, r in zip(full, shortened, strict=True))
    assert plugin.largest_line < MAX_LINE_BYTES


def test_a_2_mb_reply_of_control_characters_reaches_the_node_text_whole(plugin: PluginProcess, sim: SimulatorProcess, credentials) -> None:
    # Each \x01 takes six bytes once JSON-encoded: 12 MB if it went out as one message.
    prompt = "\x01" * 1_900_000
    for tool in ("chat", "stream_chat"):
        outcome = plugin.run_tool(tool, {"prompt": prompt}, credentials, timeout=300)
        assert outcome.ok, outcome.error
        assert outcome.text == f"[deepseek-v3.2] You said: {prompt}", tool
        assert plugin.largest_line < MAX_LINE_BYTES


def test_small_batches_keep_the_whole_results_in_the_variable(plugin: PluginProcess, sim: SimulatorProcess, credentials) -> None:
    outcome = plugin.run_tool("batch_chat", {"prompts": '["one", "two"]'}, credentials)
    assert outcome.ok, outcome.error
    results = outcome.variables["results"]
    assert [r["text"] for r in results] == ["[deepseek-v3.2] You said: one", "[deepseek-v3.2] You said: two"]
    assert not any(r["text_truncated"] for r in results)
    assert joined_results(outcome) == results
