"""The local runner and the remote-debug runner as a plugin author uses them."""

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devtools.plugin_process import REPO_ROOT
from devtools.remote import PLACEHOLDER, settings_problems
from devtools.runner import simulator_file
from tests.private_redis import free_port

SIM_PORT = free_port()  # this module's own shared simulator, so a developer's one on 8791 is left alone


@pytest.fixture(scope="module", autouse=True)
def stop_shared_simulator() -> Iterator[None]:
    yield
    pid_file = simulator_file(SIM_PORT, "pid")
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # No HOLYSHEEP_API_KEY: the simulator is used.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT), "HOLYSHEEP_SIM_PORT": str(SIM_PORT)}
    return subprocess.run([sys.executable, "-m", "devtools.runner", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_runner_validates_and_invokes_a_tool_printing_what_a_workflow_receives() -> None:
    assert "credentials accepted" in run("validate").stdout
    result = run("chat", "prompt=hello runner", "temperature=0.5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("text: [deepseek-v3.2] You said: hello runner\n")
    assert "cost_usd = " in result.stdout


def test_runner_streams_chunks_then_prints_the_final_variables() -> None:
    result = run("stream_chat", "prompt=stream for the runner")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("text: [deepseek-v3.2] You said: stream for the runner\n")
    assert "interrupted = false" in result.stdout


def test_runner_runs_concurrent_invocations_and_reports_errors_with_a_nonzero_exit() -> None:
    result = run("chat", "prompt=many", "--repeat", "5")
    assert result.stdout.count("--- invocation") == 5 and "5 invocations" in result.stdout and "0 failed" in result.stdout
    bad = run("chat", "prompt=x", "temperature=9")
    assert bad.returncode == 1 and "error: 'temperature'" in bad.stdout


def test_runner_shows_a_progress_bar_for_batches() -> None:
    result = run("batch_chat", 'prompts=["a", "b", "c", "d"]', "concurrency=2")
    assert result.returncode == 0, result.stderr
    assert "4/4" in result.stderr and "succeeded = 4" in result.stdout


def test_runner_help_lists_every_tool_the_provider_declares() -> None:
    import yaml

    tools = [yaml.safe_load((REPO_ROOT / path).read_text())["identity"]["name"]
             for path in yaml.safe_load((REPO_ROOT / "provider" / "holysheep.yaml").read_text())["tools"]]
    shown = run("--help").stdout.split("tools:\n", 1)[1]
    assert len(tools) == 11 and all(f"  {name} " in shown for name in tools)


def test_runner_refuses_an_unknown_tool_or_parameter_with_the_closest_name() -> None:
    tool = run("nosuchtool")
    assert tool.returncode != 0 and "unknown tool 'nosuchtool'" in tool.stderr and "batch_status" in tool.stderr
    assert "did you mean chat?" in run("chatt", "prompt=hi").stderr
    param = run("chat", "prompt=hi", "temprature=0.5")
    assert param.returncode != 0 and "unknown parameter 'temprature' for chat: did you mean temperature?" in param.stderr


def test_runner_shows_each_failed_batch_item_with_its_error() -> None:
    result = run("batch_chat", "prompts=" + json.dumps(["fine", "refused [[sim: 400]]"]))
    assert "failed = 1" in result.stdout
    failed = [line for line in result.stdout.splitlines() if line.startswith("  failed results[")]
    assert len(failed) == 1 and failed[0].startswith('  failed results[1] (id "1"): ') and "400" in failed[0]


def test_separate_runs_share_one_local_simulator() -> None:
    first = run("chat", "prompt=one")
    second = run("chat", "prompt=two")
    assert first.returncode == 0 and second.returncode == 0
    assert simulator_file(SIM_PORT, "pid").exists()
    assert "started the local simulator" not in second.stderr  # the second run found the first one's


def test_remote_debug_settings_are_checked_before_connecting() -> None:
    assert settings_problems({"REMOTE_INSTALL_URL": "debug.example.com:5003", "REMOTE_INSTALL_KEY": "k-123"}) == []
    problems = settings_problems({"REMOTE_INSTALL_URL": "https://debug.example.com", "REMOTE_INSTALL_KEY": PLACEHOLDER})
    assert any("without a scheme" in p for p in problems) and any("REMOTE_INSTALL_KEY" in p for p in problems)
    assert any("host:port" in p for p in settings_problems({"REMOTE_INSTALL_URL": "localhost", "REMOTE_INSTALL_KEY": "k"}))


def test_approval_route_on_the_simulator_default_answers_reads_as_a_routine_request() -> None:
    """The bundled simulator answers like a sensible model: a plain purchase is not an injection, its risk
    is low, and the policy's level stands (a fooled or failing model is for tests to script)."""
    result = run("approval_route", "content=Buy 10 switches", "amount=2500", "request_type=purchase",
                 "requester_id=amy", "request_id=first-try")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "injection_suspected = false" in result.stdout
    assert 'risk_level = "low"' in result.stdout and 'approver_level = "director"' in result.stdout


@pytest.mark.redis
def test_a_batch_job_is_submitted_polled_and_read_in_three_separate_runs() -> None:
    """Runs share the local simulator and Redis; batch_status works on the job before answering (a run's
    plugin process is the only worker), and a run that ends gives its items back instead of holding
    them for a lease."""
    credentials = ("--credentials", json.dumps({"redis_url": "redis://127.0.0.1:6379/15"}))
    submitted = run("batch_submit", "prompts=" + json.dumps(["one", "two", "three", "four"]), *credentials)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = json.loads(submitted.stdout.split("job_id = ", 1)[1].splitlines()[0])
    status = run("batch_status", f"job_id={job_id}", *credentials)
    assert 'status = "completed"' in status.stdout, status.stdout
    results = run("batch_results", f"job_id={job_id}", "files=none", *credentials)
    assert results.returncode == 0 and f"Job {job_id} (completed): results 0 to 3 of 4" in results.stdout
    assert "failed results[" not in results.stdout  # any failed item would be printed whole
