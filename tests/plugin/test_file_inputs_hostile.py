"""Bytes that cross the boundary, through the plugin runtime (python -m main), as a hostile workflow
user would send them (issue 22):

- a file URL to an internal address outside `dify_files_url` makes no connection at all (the listener
  counts connections), metadata addresses are refused, a redirect to loopback is refused, and a file
  from the `dify_files_url` origin on loopback is fetched (relative Dify links too);
- a gzip bomb, an endless body, a 1 byte/s server, an XLSX with millions of shared strings and a CSV
  with 10 million columns are each refused within a bounded time, with a message naming the limit,
  never quoting the file, the plugin process's peak RSS under the 256 MiB the manifest reserves;
- webhooks: an internal target the allowlist does not name is never contacted; an allowlisted loopback
  receiver gets its signed notification;
- the approval endpoint answers a form of too many parts with 413; a redis_url holding a lone surrogate
  is refused naming redis_url.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools import hostile_files as hostile
from devtools.file_server import FileServer, file_parameter
from devtools.plugin_process import PluginProcess
from tests.plugin.test_approval_notifications import LINK_SECRET, Receiver, policy, route_params, target_for

pytestmark = pytest.mark.runtime
REDIS_URL = "redis://127.0.0.1:6379/15"
MANIFEST_MEMORY = 256 * 2**20


@pytest.fixture
def files() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def submit(plugin: PluginProcess, file: dict[str, Any], credentials: dict[str, Any], timeout: float = 120) -> Any:
    return plugin.run_tool("batch_submit", {"file": file}, {**credentials, "redis_url": REDIS_URL, "job_ttl_hours": "1"}, timeout=timeout)


def refusal(outcome: Any) -> str:
    assert not outcome.ok, "the file was accepted"
    message = str(outcome.error["message"])
    assert "hunter2" not in message and "DB_PASSWORD" not in message and "Traceback" not in message
    return message


def test_an_internal_address_outside_dify_files_url_is_never_connected(plugin: PluginProcess, credentials, files: FileServer) -> None:
    with FileServer() as internal:
        secret_file = internal.parameter(hostile.SECRET.encode(), "env.csv", "text/csv")
        for trusted in ("", files.origin):  # no setting, and Dify's file server elsewhere on loopback
            message = refusal(submit(plugin, secret_file, {**credentials, "dify_files_url": trusted}))
            assert "refused: the link (http://127.0.0.1:" in message and "internal address" in message
            assert "FILES_URL" not in message
        assert internal.connections == 0


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/iam/", "http://[fd00:ec2::254]/latest/", "http://100.100.100.200/"])
def test_metadata_addresses_are_never_contacted_even_named_as_dify_files_url(plugin: PluginProcess, credentials, url: str) -> None:
    origin = url.split("/latest")[0].rstrip("/") if "/latest" in url else url.rstrip("/")
    file = file_parameter(url, "meta.csv", "text/csv", 10)
    message = refusal(submit(plugin, file, {**credentials, "dify_files_url": origin}))
    assert "link-local or cloud metadata address, which is never contacted" in message


def test_a_file_from_the_dify_files_origin_on_loopback_is_fetched_relative_links_too(plugin: PluginProcess, credentials, files) -> None:
    dify = {**credentials, "dify_files_url": files.origin}
    for relative in (False, True):
        parameter = files.parameter(f"id,prompt\nF-{uuid.uuid4().hex[:6]},hello\n".encode(), "in.csv", "text/csv", relative=relative)
        outcome = submit(plugin, parameter, dify)
        assert outcome.ok, outcome.error
        assert outcome.variables["items"] == 1
    assert files.downloads == 2


def test_a_redirect_to_loopback_is_refused_without_connecting(plugin: PluginProcess, credentials, files: FileServer) -> None:
    with FileServer() as internal:
        target = internal.parameter(hostile.SECRET.encode(), "env.csv", "text/csv")["url"]
        message = refusal(submit(plugin, files.route(hostile.redirect_route(target)), {**credentials, "dify_files_url": files.origin}))
        assert "redirect refused: the new location (http://127.0.0.1:" in message and "internal address" in message
        assert internal.connections == 0


def _bomb(files: FileServer) -> dict[str, Any]:
    return files.route(hostile.bomb_route(hostile.gzip_bomb(1024)))  # 1 GiB of zeros, about 1 MB on the wire


def _endless(files: FileServer) -> dict[str, Any]:
    return files.route(hostile.endless_route(1024))


def _strings(files: FileServer) -> dict[str, Any]:
    content = hostile.xlsx_with_shared_strings(3_000_000)
    return files.parameter(content, "strings.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _columns(files: FileServer) -> dict[str, Any]:
    return files.parameter(hostile.csv_with_columns(10_000_000), "wide.csv", "text/csv")


@pytest.mark.parametrize(
    ("build", "expected", "seconds"),
    [
        (_bomb, "too big: the file unpacks to more than 33554432 bytes (32 MiB)", 30),
        (_endless, "too big: more than 33554432 bytes (32 MiB) were sent", 30),
        (_strings, "has more than 500000 shared strings", 30),
        (_columns, "line 1 is longer than 1000000 characters", 30),
    ],
    ids=["gzip-bomb", "endless-body", "xlsx-3M-shared-strings", "csv-10M-columns"],
)
def test_hostile_files_are_refused_in_bounded_time_and_memory(credentials, files: FileServer, build, expected: str, seconds: float) -> None:
    parameter = build(files)
    with PluginProcess() as plugin:  # a process of its own: its peak RSS is this file's
        started = time.monotonic()
        message = refusal(submit(plugin, parameter, {**credentials, "dify_files_url": files.origin}))
        elapsed = time.monotonic() - started
        peak = plugin.peak_rss_bytes
    print(f"{expected[:40]!r}: {elapsed:.1f} s, peak RSS {peak / 2**20:.0f} MiB")
    assert expected in message
    assert elapsed < seconds
    assert peak < MANIFEST_MEMORY


def test_a_file_near_the_cap_with_the_most_items_is_read_under_the_memory_reservation(credentials, files: FileServer) -> None:
    """200,000 items (the job limit) in 30 MiB (the cap is 32 MiB): the worst case of per-item memory."""
    content = ("id,prompt\n" + "".join(f"{i},{'p' * 150}\n" for i in range(200_000))).encode()
    with PluginProcess() as plugin:
        creds = {**credentials, "dify_files_url": files.origin, "redis_url": REDIS_URL, "job_ttl_hours": "1"}
        outcome = plugin.run_tool("batch_submit", {"file": files.parameter(content, "big.csv", "text/csv"), "concurrency": 1, "rpm_limit": 1},
                                  creds, timeout=180)
        assert outcome.ok, outcome.error
        assert outcome.variables["items"] == 200_000
        assert plugin.run_tool("batch_cancel", {"job_id": outcome.variables["job_id"]}, creds, timeout=120).ok
        peak = plugin.peak_rss_bytes
    print(f"200,000 items from {len(content) / 2**20:.0f} MiB: peak RSS {peak / 2**20:.0f} MiB")
    assert peak < MANIFEST_MEMORY


def test_a_one_byte_a_second_server_is_cut_off_by_the_total_deadline(credentials, files: FileServer) -> None:
    stop = threading.Event()
    parameter = files.route(hostile.trickle_route(stop, every_seconds=1.0))
    try:
        with PluginProcess() as plugin:
            started = time.monotonic()
            message = refusal(submit(plugin, parameter, {**credentials, "dify_files_url": files.origin}))
            elapsed = time.monotonic() - started
            peak = plugin.peak_rss_bytes
    finally:
        stop.set()
    assert "too slow: the download did not finish within 30 s" in message
    assert 29 < elapsed < 40 and peak < MANIFEST_MEMORY


# --------------------------------------------------------------------------- webhooks


def counting(receiver: Receiver) -> list[Any]:
    """Every TCP connection the receiver accepts, before any byte is read."""
    accepted: list[Any] = []
    original = receiver.server.process_request

    def process_request(request: Any, client_address: Any) -> None:
        accepted.append(client_address)
        original(request, client_address)

    receiver.server.process_request = process_request  # type: ignore[method-assign]
    return accepted


def test_a_loopback_webhook_not_in_the_allowlist_is_never_contacted(plugin: PluginProcess, credentials) -> None:
    receiver = Receiver()
    accepted = counting(receiver)
    try:
        text = policy({"team": "generic"}, {"director": [{"id": "dana", "name": "Dana Ito", "channel": "team"}]})
        for allowlist in ("", "10.0.0.0/8, https://127.0.0.1:1"):  # nothing, then entries that are not this receiver
            outcome = plugin.run_tool("approval_route", route_params(text, {"team": target_for("generic", receiver)}),
                                      {**credentials, "webhook_allowlist": allowlist})
            assert outcome.ok, outcome.error
            [row] = outcome.variables["notifications"]
            assert row["status"] != "delivered" and "http_status" not in row
            assert "not contacted" in row["reason"] and "webhook_allowlist" in row["reason"]
        assert accepted == [] and receiver.received == []
    finally:
        receiver.close()


def test_an_allowlisted_loopback_receiver_gets_its_signed_notification(plugin: PluginProcess, credentials) -> None:
    receiver = Receiver()
    try:
        text = policy({"team": "generic"}, {"director": [{"id": "dana", "name": "Dana Ito", "channel": "team"}]})
        port = receiver.server.server_address[1]
        outcome = plugin.run_tool("approval_route", route_params(text, {"team": target_for("generic", receiver)}),
                                  {**credentials, "webhook_allowlist": f"http://127.0.0.1:{port}"})
        assert outcome.ok, outcome.error
        [row] = outcome.variables["notifications"]
        assert row["status"] == "delivered"
        [item] = receiver.at("/generic")
        timestamp = item.headers["X-HolySheep-Timestamp"]
        secret = "generic-signing-secret-1234"
        expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + item.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, item.headers["X-HolySheep-Signature"])
    finally:
        receiver.close()


def test_a_malformed_webhook_allowlist_is_refused_naming_it(plugin: PluginProcess, credentials) -> None:
    text = policy({"team": "generic"}, {"director": [{"id": "dana", "name": "Dana Ito", "channel": "team"}]})
    outcome = plugin.run_tool("approval_route", route_params(text, {}), {**credentials, "webhook_allowlist": "hooks.internal:8443"})
    assert not outcome.ok and "webhook_allowlist" in outcome.error["message"]


# --------------------------------------------------------------------------- endpoint form parts, redis_url text


def test_a_form_with_more_parts_than_werkzeug_allows_gets_413(plugin: PluginProcess) -> None:
    """werkzeug's max_form_parts (1,000) counts multipart/form-data parts; past it, 413, not 500."""
    boundary = b"holysheep-parts"
    body = b"".join(b"--%s\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\n1\r\n" % (boundary, i) for i in range(1500))
    body += b"--%s--\r\n" % boundary
    answer = plugin.invoke_endpoint(
        "POST", "/approval", headers={"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}, body=body,
        settings={"link_secret": LINK_SECRET, "redis_url": REDIS_URL},
    )
    assert answer.status == 413 and "nothing was applied" in answer.text


@pytest.mark.parametrize("host", ["redis\ud800", "redis\ufffd"])
def test_a_redis_url_with_a_lone_surrogate_is_refused_naming_redis_url(plugin: PluginProcess, credentials, host: str) -> None:
    outcome = plugin.run_tool(
        "approval_transition", {"request_id": "R-1", "event": "approve", "actor_id": "amy", "actor_level": "manager"},
        {**credentials, "redis_url": f"redis://{host}:6379/0"},
    )
    assert not outcome.ok
    assert "redis_url" in outcome.error["message"] and "Invalid character" not in outcome.error["message"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("dify_files_url", "api:5001", "dify_files_url 'api:5001' is not an http(s) origin with a host: use e.g. http://api:5001"),
        ("dify_files_url", "http://api:5001/files", "give only the origin (scheme, host and port)"),
        ("webhook_allowlist", "10.0.5.0/24, hooks:80", "webhook_allowlist entry 2 ('hooks:80') is neither an origin with a scheme nor"),
    ],
)
def test_the_address_settings_are_checked_when_saved(plugin: PluginProcess, credentials, field: str, value: str, expected: str) -> None:
    accepted, message = plugin.validate({**credentials, field: value})
    assert not accepted and expected in message
    assert plugin.validate({**credentials, "dify_files_url": "http://api:5001", "webhook_allowlist": "10.0.5.0/24"})[0]
