"""examples/branch_on_cost_and_interruption.yml on graphon: an If/Else on stream_chat's `interrupted` and
`cost_known` takes its branch in each case (a missing variable would fail the node instead), and an
optional Start field left empty reaches the tool as an empty value, as Dify passes it."""

from tests_workflow.harness import read_dsl, run_workflow

DSL = read_dsl("branch_on_cost_and_interruption.yml")
CHAT, INTERRUPTED, UNPRICED, PRICED = "5000000000002", "5000000000004", "5000000000005", "5000000000006"


def test_a_priced_answer_takes_the_priced_branch_with_the_optional_model_left_empty(sim, plugin, credentials) -> None:
    result = run_workflow(DSL, {"prompt": "Name a colour.", "custom_model": ""}, plugin=plugin, credentials=credentials)
    assert result.succeeded, result.error
    assert result.calls[0].parameters["custom_model"] == ""  # passed empty, not the selector's text
    assert result.ran(PRICED) and not result.ran(UNPRICED) and not result.ran(INTERRUPTED)
    assert result.outputs["cost_usd"] > 0 and result.outputs["finish_reason"] == "stop"


def test_an_unknown_price_takes_the_unpriced_branch(sim, plugin, credentials) -> None:
    result = run_workflow(DSL, {"prompt": "Name a colour.", "custom_model": "mystery-1"}, plugin=plugin, credentials=credentials)
    assert result.succeeded, result.error
    assert result.ran(UNPRICED) and not result.ran(PRICED)
    assert result.node_outputs(CHAT)["cost_usd"] == 0 and result.node_outputs(CHAT)["cost_known"] is False
    assert result.outputs["model"] == "mystery-1" and result.outputs["reply"]


def test_an_interrupted_stream_takes_the_interrupted_branch(sim, plugin, credentials) -> None:
    result = run_workflow(DSL, {"prompt": "Tell me a long story. [[sim: cut]]"}, plugin=plugin, credentials=credentials)
    assert result.succeeded, result.error
    assert result.ran(INTERRUPTED) and not result.ran(PRICED) and not result.ran(UNPRICED)
    assert result.outputs["finish_reason"] == "" and result.outputs["error"]
