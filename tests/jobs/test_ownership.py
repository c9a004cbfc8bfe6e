"""Who may see a batch job given its id (jobs.service against the real Redis, db 15): the app that
submitted it, in its workspace; with `jobs_visible_to: workspace`, every app of that workspace. Anyone
else (another app, another workspace) is told exactly what an id that never existed is told, and
nothing about the job changes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from gateway import GatewayConfig
from gateway.errors import FieldError
from gateway.spend.budget import Identity
from jobs import service
from jobs.inputs import parse_prompts
from jobs.queue import JobEngine
from simulator.harness import SimulatorProcess
from specs.job_spec import JobSpec

pytestmark = pytest.mark.redis
REDIS_URL = "redis://127.0.0.1:6379/15"
OWNER, OTHER_APP = Identity(app_id="app-owner", user_id="u1"), Identity(app_id="app-other", user_id="u1")


@pytest.fixture
def engine() -> JobEngine:
    """No background workers: a submitted job stays running, untouched, for the whole test."""
    fresh = JobEngine()
    fresh.background = False
    return fresh


def config(api_key: str, base_url: str, **extra: str) -> GatewayConfig:
    return GatewayConfig.from_credentials({"api_key": api_key, "base_url": base_url, "redis_url": REDIS_URL, **extra})


def submitted(engine: JobEngine, workspace: GatewayConfig) -> str:
    items, json_format = parse_prompts(json.dumps(["first", "second", "third"]))
    return str(service.submit(engine, workspace, items, json_format, JobSpec(), 3600, OWNER)["job_id"])


def refusal(call: Callable[[], Any], job_id: str) -> str:
    """The message of a refused call, with the job id it names replaced (compared across ids)."""
    with pytest.raises(service.JobError) as refused:
        call()
    return str(refused.value).replace(job_id, "<job_id>")


def every_job_call(engine: JobEngine, workspace: GatewayConfig, job_id: str, caller: Identity) -> dict[str, Callable[[], Any]]:
    return {
        "status": lambda: service.status(engine, workspace, job_id, caller),
        "results": lambda: service.results_page(engine, workspace, job_id, caller, 0, 10),
        "files": lambda: list(service.result_files(engine, workspace, job_id, caller, ("jsonl",))),
        "failed_items": lambda: service.failed_items(engine, workspace, job_id, caller),
        "cancel": lambda: service.cancel(engine, workspace, job_id, caller),
    }


def job_keys(workspace: GatewayConfig, job_id: str) -> dict[str, Any]:
    """Everything Redis holds about the job: to check that a refused call changed nothing."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = workspace.keys
    return {
        "meta": client.hgetall(keys.job(job_id, "meta")),
        "sent": client.hgetall(keys.job(job_id, "sent")),
        "res": client.hgetall(keys.job(job_id, "res")),
        "pending": client.xpending(keys.job(job_id, "items"), "w")["pending"],
        "open": client.sismember(keys.jobs_open(), job_id),
    }


def test_another_app_and_another_workspace_get_what_a_never_existing_id_gets(sim: SimulatorProcess, engine: JobEngine) -> None:
    workspace = config(sim.api_key, sim.base_url)
    other_workspace = config(f"sk-other-workspace-{uuid.uuid4().hex}", sim.base_url)
    job_id = submitted(engine, workspace)
    before = job_keys(workspace, job_id)
    never = uuid.uuid4().hex
    for name, call in every_job_call(engine, workspace, never, OWNER).items():
        expected = refusal(call, never)
        assert expected.startswith("no job <job_id> here"), expected
        assert refusal(every_job_call(engine, workspace, job_id, OTHER_APP)[name], job_id) == expected, name
        assert refusal(every_job_call(engine, other_workspace, job_id, OWNER)[name], job_id) == expected, name  # even as "the same app"
        assert refusal(every_job_call(engine, other_workspace, job_id, OTHER_APP)[name], job_id) == expected, name
    assert job_keys(workspace, job_id) == before  # still running, nothing sent, nothing cancelled
    assert before["meta"][b"status"] == b"running" and before["open"]
    # The submitting app can: read it, then cancel it.
    assert service.status(engine, workspace, job_id, OWNER)["status"] == "running"
    assert [r["index"] for r in service.results_page(engine, workspace, job_id, OWNER, 0, 10)[2]] == [0, 1, 2]
    assert service.cancel(engine, workspace, job_id, OWNER)["cancelled"] is True


def test_the_same_key_with_another_gateway_url_is_not_the_jobs_gateway(sim: SimulatorProcess, engine: JobEngine) -> None:
    workspace = config(sim.api_key, sim.base_url)
    job_id = submitted(engine, workspace)
    elsewhere = config(sim.api_key, "http://127.0.0.1:9/v1")
    never = uuid.uuid4().hex
    assert refusal(lambda: service.status(engine, elsewhere, job_id, OWNER), job_id) == refusal(
        lambda: service.status(engine, workspace, never, OWNER), never
    )
    assert service.cancel(engine, workspace, job_id, OWNER)["cancelled"] is True


def test_jobs_visible_to_workspace_lets_every_app_of_the_workspace_in_and_no_other_workspace(sim: SimulatorProcess, engine: JobEngine) -> None:
    workspace = config(sim.api_key, sim.base_url, jobs_visible_to="workspace")
    job_id = submitted(engine, workspace)
    assert service.status(engine, workspace, job_id, OTHER_APP)["status"] == "running"
    assert service.status(engine, workspace, job_id, Identity())["status"] == "running"  # a call without an app too
    other_workspace = config(f"sk-other-workspace-{uuid.uuid4().hex}", sim.base_url, jobs_visible_to="workspace")
    never = uuid.uuid4().hex
    assert refusal(lambda: service.cancel(engine, other_workspace, job_id, OWNER), job_id) == refusal(
        lambda: service.cancel(engine, other_workspace, never, OWNER), never
    )
    assert service.cancel(engine, workspace, job_id, OTHER_APP)["cancelled"] is True


def test_the_not_found_message_says_what_to_check_and_who_may_see_a_job() -> None:
    by_app = service.not_found(config("sk-a-0123456789", "http://gw.test/v1"), "abc")
    assert "check the job_id" in by_app and "only to the app that submitted it" in by_app and "job_ttl_hours" in by_app
    by_workspace = service.not_found(config("sk-a-0123456789", "http://gw.test/v1", jobs_visible_to="workspace"), "abc")
    assert "only to the workspace that submitted it" in by_workspace


@pytest.mark.parametrize("value", ["apps", "tenant", "everyone", "1"])
def test_a_bad_jobs_visible_to_says_what_to_set(value: str) -> None:
    with pytest.raises(FieldError) as refused:
        GatewayConfig.from_credentials({"api_key": "sk-a-0123456789", "jobs_visible_to": value})
    assert refused.value.field == "jobs_visible_to"
    assert re.search(r"must be app .* or workspace", str(refused.value))


@pytest.mark.parametrize(("raw", "parsed"), [(None, "app"), ("", "app"), ("app", "app"), (" Workspace ", "workspace")])
def test_jobs_visible_to_defaults_to_the_app(raw: str | None, parsed: str) -> None:
    assert GatewayConfig.from_credentials({"api_key": "sk-a-0123456789", "jobs_visible_to": raw}).jobs_visible_to == parsed
