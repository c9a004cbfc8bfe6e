"""examples/batch_job_polling.yml on graphon: batch_submit, a Loop around a waiting Code node (run by the
dify-sandbox stand-in) and batch_status until the job has finished, batch_results, an Iteration over its
`results`, and a Code node over its `json`. Jobs live in the real Redis (database 14; job ids are unique)."""

import json
import uuid

from tests_workflow.harness import code_sandbox, read_dsl, run_workflow

DSL = read_dsl("batch_job_polling.yml")
SUBMIT, LOOP, STATUS, RESULTS, LINE, END = "6000000000002", "6000000000003", "6000000000005", "6000000000006", "6000000000008", "6000000000010"
REDIS_URL = "redis://127.0.0.1:6379/14"


def test_the_loop_waits_for_the_job_then_every_result_is_gone_through(sim, plugin, credentials) -> None:
    tag = uuid.uuid4().hex[:8]
    items = [{"id": f"{tag}-{n}", "prompt": f"Polling item {n} {tag}"} for n in range(4)]
    items[2]["prompt"] += " [[sim: 400x1]]"
    sandbox_runs = len(code_sandbox().runs)
    result = run_workflow(DSL, {"prompts": json.dumps(items)}, plugin=plugin, credentials={**credentials, "redis_url": REDIS_URL},
                          timeout=180)
    assert result.succeeded, result.error
    tools = [c.tool for c in result.calls]
    assert tools[0] == "batch_submit" and tools[-1] == "batch_results"
    assert set(tools[1:-1]) == {"batch_status"} and len(tools) >= 3  # at least one status check, in the loop
    # The loop stopped on the first status that said finished, and not before.
    statuses = [c for c in result.calls if c.tool == "batch_status"]
    finished = [next(m["message"]["variable_value"] for m in c.messages
                     if m["type"] == "variable" and m["message"]["variable_name"] == "finished") for c in statuses]
    assert finished[-1] is True and not any(finished[:-1])
    assert len(code_sandbox().runs) - sandbox_runs >= len(statuses) + 4 + 1  # waits, one line per item, the summary

    outputs = result.outputs
    assert outputs["job_id"] == result.node_outputs(SUBMIT)["job_id"]
    assert (outputs["status"], outputs["total"], outputs["succeeded"]) == ("completed", 4, 3)
    lines = outputs["report"].splitlines()
    assert [line.split(":")[0] for line in lines] == [item["id"] for item in items]
    assert "failed" in lines[2] and "You said" in lines[0]
    assert json.loads(outputs["failed_items"]) == [items[2]]
