"""Who may see a batch job, through the plugin runtime (python -m main, as the daemon runs it): one plugin
process serving two workspaces (two API keys, one gateway URL, one Redis) and two apps of the first.
Another app and another workspace get, for batch_status, batch_results and batch_cancel, the very message
a job id that never existed gets, and the job goes on unchanged; the submitting app reads and cancels it.
With `jobs_visible_to: workspace`, another app of the workspace may; another workspace still may not."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import redis

from devtools.plugin_process import PluginProcess
from gateway.state.keys import Keys
from simulator.harness import SimulatorProcess

pytestmark = [pytest.mark.redis, pytest.mark.runtime]
REDIS_URL = "redis://127.0.0.1:6379/15"
OWNER_APP, OTHER_APP = "app-submitter", "app-other"


@pytest.fixture
def slow_sim() -> Any:
    with SimulatorProcess() as sim:
        sim.configure(latency_ms=1500)  # one item at a time, 1.5 s each: the job is still running throughout
        yield sim


def creds(api_key: str, sim: SimulatorProcess, **extra: Any) -> dict[str, Any]:
    return {"api_key": api_key, "base_url": sim.base_url, "default_model": "deepseek-v3.2", "redis_url": REDIS_URL, **extra}


def run(plugin: PluginProcess, tool: str, params: dict[str, Any], credentials: dict[str, Any], app_id: str) -> dict[str, Any]:
    outcome = plugin.run_tool(tool, params, credentials, app_id=app_id, timeout=60)
    assert outcome.ok, outcome.error
    return outcome.variables


def refused(plugin: PluginProcess, tool: str, job_id: str, credentials: dict[str, Any], app_id: str) -> str:
    """The message a refused call shows, with the job id and the invocation's correlation id left out."""
    outcome = plugin.run_tool(tool, {"job_id": job_id, "files": "none"}, credentials, app_id=app_id, timeout=60)
    assert not outcome.ok, f"{tool} as {app_id} was served: {outcome.variables}"
    message = outcome.error_message.replace(job_id, "<job_id>")
    return re.sub(r" \[correlation_id: hs-[0-9a-f]+\]$", "", message)


def stored(api_key: str, job_id: str) -> dict[str, Any]:
    client = redis.Redis.from_url(REDIS_URL)
    keys = Keys.for_api_key(api_key)
    meta = client.hgetall(keys.job(job_id, "meta"))
    return {"status": meta[b"status"], "open": client.sismember(keys.jobs_open(), job_id)}


def test_another_app_or_workspace_is_told_not_found_and_the_submitting_app_is_served(slow_sim: SimulatorProcess) -> None:
    workspace = creds(slow_sim.api_key, slow_sim)
    other_workspace = creds(f"sk-another-workspace-{uuid.uuid4().hex}", slow_sim)
    with PluginProcess() as plugin:
        prompts = json.dumps([f"owned {i}" for i in range(6)])
        job = run(plugin, "batch_submit", {"prompts": prompts, "concurrency": 1}, workspace, OWNER_APP)
        job_id = job["job_id"]
        never = uuid.uuid4().hex
        for tool in ("batch_status", "batch_results", "batch_cancel"):
            expected = refused(plugin, tool, never, workspace, OWNER_APP)
            assert expected.startswith("no job <job_id> here"), expected
            assert refused(plugin, tool, job_id, workspace, OTHER_APP) == expected, tool
            assert refused(plugin, tool, job_id, other_workspace, OWNER_APP) == expected, tool
            assert refused(plugin, tool, job_id, other_workspace, OTHER_APP) == expected, tool
        # Nothing changed: the job still runs, still open to the workers, and the owner sees it so.
        assert stored(slow_sim.api_key, job_id) == {"status": b"running", "open": True}
        status = run(plugin, "batch_status", {"job_id": job_id}, workspace, OWNER_APP)
        assert status["status"] == "running" and not status["finished"]
        page = run(plugin, "batch_results", {"job_id": job_id, "files": "none"}, workspace, OWNER_APP)
        assert [r["index"] for r in page["results"]] == list(range(6))
        cancelled = run(plugin, "batch_cancel", {"job_id": job_id}, workspace, OWNER_APP)
        assert cancelled["status"] == "cancelled" and cancelled["cancelled"] is True
    assert stored(slow_sim.api_key, job_id) == {"status": b"cancelled", "open": False}


def test_jobs_visible_to_workspace_opens_a_job_to_every_app_of_its_workspace_only(slow_sim: SimulatorProcess) -> None:
    workspace = creds(slow_sim.api_key, slow_sim, jobs_visible_to="workspace")
    other_workspace = creds(f"sk-another-workspace-{uuid.uuid4().hex}", slow_sim, jobs_visible_to="workspace")
    with PluginProcess() as plugin:
        job_id = run(plugin, "batch_submit", {"prompts": json.dumps(["shared 0", "shared 1"]), "concurrency": 1}, workspace, OWNER_APP)["job_id"]
        assert run(plugin, "batch_status", {"job_id": job_id}, workspace, OTHER_APP)["job_id"] == job_id
        never = uuid.uuid4().hex
        expected = refused(plugin, "batch_cancel", never, other_workspace, OWNER_APP)
        assert refused(plugin, "batch_cancel", job_id, other_workspace, OWNER_APP) == expected
        assert run(plugin, "batch_cancel", {"job_id": job_id}, workspace, OTHER_APP)["cancelled"] is True
        ok, message = plugin.validate(creds(slow_sim.api_key, slow_sim, jobs_visible_to="everyone"))
    assert not ok and "jobs_visible_to" in message and "must be app" in message and "or workspace" in message
