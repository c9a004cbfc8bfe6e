"""examples/batch_retry_failed.yml on graphon: the first batch_chat's `failed_items` (streamed as
chunks, joined by the tool node) is the second batch_chat's `prompts`, and the retry answers exactly the
items that failed, under their original ids. Failures come from the simulated gateway's fault directives:
`500x3` fails an item's three attempts (max_retries 2) in the first pass only; `400x1` fails it once,
without a retry (a 4xx is never retried)."""

import json

from tests_workflow.harness import read_dsl, run_workflow

DSL = read_dsl("batch_retry_failed.yml")
FIRST, BRANCH, RETRY, RETRIED_END, DONE_END = "3000000000002", "3000000000003", "3000000000004", "3000000000005", "3000000000006"

ITEMS = [
    {"id": "a", "prompt": "Summarise the quarterly report in one line."},
    {"id": "b", "prompt": "Translate 'good morning' into French. [[sim: 500x3]]"},
    {"id": "c", "prompt": "Name a prime number above 100. [[sim: 400x1]]"},
    {"id": "d", "prompt": "Suggest a title for a post about batching."},
]


def test_failed_items_of_the_first_batch_feed_the_second(sim, plugin, credentials) -> None:
    result = run_workflow(DSL, {"prompts": json.dumps(ITEMS)}, plugin=plugin, credentials=credentials)
    assert result.succeeded, result.error
    assert [c.tool for c in result.calls] == ["batch_chat", "batch_chat"]

    first = result.node_outputs(FIRST)
    assert (first["succeeded"], first["failed"]) == (2, 2)
    by_id = {r["id"]: r for r in first["results"]}
    assert by_id["b"]["status"] == by_id["c"]["status"] == "error"
    assert by_id["b"]["attempts"] == 3 and by_id["c"]["attempts"] == 1

    # failed_items reached the tool node as stream-variable chunks; graphon joined them into one value,
    # and that value is what the second batch received as `prompts`.
    failed_items = first["failed_items"]
    assert [m for m in result.calls[0].messages if m["type"] == "variable" and m["message"]["variable_name"] == "failed_items"]
    assert result.calls[1].parameters["prompts"] == failed_items
    assert json.loads(failed_items) == [ITEMS[1], ITEMS[2]]

    retry = result.node_outputs(RETRY)
    assert (retry["succeeded"], retry["failed"]) == (2, 0)
    assert [(r["id"], r["status"]) for r in retry["results"]] == [("b", "ok"), ("c", "ok")]
    assert retry["results"][0]["text"] == "[deepseek-v3.2] You said: Translate 'good morning' into French."

    assert not result.ran(DONE_END)
    outputs = result.outputs
    assert (outputs["succeeded_first"], outputs["succeeded_on_retry"]) == (2, 2)
    assert [r["id"] for r in outputs["retried"]] == ["b", "c"]
    assert json.loads(outputs["still_failed"] or "[]") == []
    # Every item was answered once in the end: a and d in the first pass, b and c on the retry.
    answered = {r["id"] for r in outputs["first_pass"] if r["status"] == "ok"} | {r["id"] for r in outputs["retried"] if r["status"] == "ok"}
    assert answered == {"a", "b", "c", "d"}


def test_nothing_failed_skips_the_retry(sim, plugin, credentials) -> None:
    prompts = "\n".join(["First plain-text prompt.", "Second plain-text prompt."])
    result = run_workflow(DSL, {"prompts": prompts}, plugin=plugin, credentials=credentials)
    assert result.succeeded, result.error
    assert [c.tool for c in result.calls] == ["batch_chat"]
    assert not result.ran(RETRY) and result.ran(DONE_END)
    assert result.outputs["succeeded_first"] == 2 and len(result.outputs["first_pass"]) == 2
