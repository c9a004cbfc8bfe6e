"""examples/chatflow_streaming.yml on graphon: the Answer node types stream_chat's reply live.

What reaches the Answer is what graphon's response filter (Dify's response coordinator) releases
for the Answer's template: the tool node's `text` chunks. They must arrive while the tool node is still
running (before its succeeded event, and before the plugin sent its last message), and the final
answer must be exactly the joined stream."""

from graphon.engine_events.node import NodeRunStreamChunkEvent, NodeRunSucceededEvent

from tests_workflow.harness import read_dsl, run_workflow

DSL = read_dsl("chatflow_streaming.yml")
TOOL, ANSWER = "2000000000002", "2000000000003"
QUESTION = "Which three things should a team check before a release goes out on a Friday afternoon?"
# The simulated gateway replies "[model] You said: <prompt>", three words per SSE event; `trickle`
# waits that many milliseconds after each event, as a model generating tokens does.
TRICKLE_MS = 120


def answer_chunks(result) -> list[NodeRunStreamChunkEvent]:
    return [e for e in result.stream_chunks([TOOL, "text"]) if e.chunk]


def test_answer_streams_the_reply_before_the_tool_node_finishes(sim, plugin, credentials) -> None:
    result = run_workflow(DSL, {"query": f"{QUESTION} [[sim: trickle={TRICKLE_MS}]]"}, plugin=plugin, credentials=credentials)
    assert result.succeeded, result.error

    chunks = answer_chunks(result)
    assert len(chunks) >= 5, [c.chunk for c in chunks]
    tool_done = result.index(NodeRunSucceededEvent, TOOL)
    positions = [result.events.index(c) for c in chunks]
    assert all(p < tool_done for p in positions), "every chunk reaches the Answer before the tool node succeeds"
    # ...and really while the plugin is still generating, not replayed at the end.
    call = result.calls[0]
    first_chunk_at = result.received_at[positions[0]]
    assert first_chunk_at < call.finished - 3 * TRICKLE_MS / 1000, (first_chunk_at, call.finished)

    streamed = "".join(c.chunk for c in chunks)
    assert result.outputs["answer"] == streamed
    assert streamed == f"[deepseek-v3.2] You said: {QUESTION}"
    # The chunks are the plugin's text messages, one Answer chunk per message, in order.
    assert [c.chunk for c in chunks] == [m["message"]["text"] for m in call.messages if m["type"] == "text" and m["message"]["text"]]


def test_tool_node_outputs_next_to_the_streamed_text(sim, plugin, credentials) -> None:
    result = run_workflow(DSL, {"query": QUESTION}, plugin=plugin, credentials=credentials)
    outputs = result.node_outputs(TOOL)
    assert outputs["text"] == result.outputs["answer"]
    assert outputs["model"] == "deepseek-v3.2" and outputs["finish_reason"] == "stop" and outputs["interrupted"] is False
    assert outputs["usage"]["completion_tokens"] > 0 and outputs["attempts"] == 1
    assert None not in outputs.values()


def test_an_interrupted_stream_keeps_the_partial_answer_and_says_so(sim, plugin, credentials) -> None:
    result = run_workflow(DSL, {"query": f"{QUESTION} [[sim: cut]]"}, plugin=plugin, credentials=credentials)
    assert result.succeeded, result.error
    outputs = result.node_outputs(TOOL)
    assert outputs["interrupted"] is True and outputs["error"]
    answer = result.outputs["answer"]
    assert answer and f"[deepseek-v3.2] You said: {QUESTION}".startswith(answer) and answer != f"[deepseek-v3.2] You said: {QUESTION}"
    assert answer == "".join(c.chunk for c in answer_chunks(result))
