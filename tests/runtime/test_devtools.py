"""The local runner and the remote-debug runner as a plugin author uses them."""

import subprocess
import sys

from devtools.plugin_process import REPO_ROOT
from devtools.remote import PLACEHOLDER, settings_problems


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT)}  # no HOLYSHEEP_API_KEY: the simulator is used
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


def test_remote_debug_settings_are_checked_before_connecting() -> None:
    assert settings_problems({"REMOTE_INSTALL_URL": "debug.example.com:5003", "REMOTE_INSTALL_KEY": "k-123"}) == []
    problems = settings_problems({"REMOTE_INSTALL_URL": "https://debug.example.com", "REMOTE_INSTALL_KEY": PLACEHOLDER})
    assert any("without a scheme" in p for p in problems) and any("REMOTE_INSTALL_KEY" in p for p in problems)
    assert any("host:port" in p for p in settings_problems({"REMOTE_INSTALL_URL": "localhost", "REMOTE_INSTALL_KEY": "k"}))
