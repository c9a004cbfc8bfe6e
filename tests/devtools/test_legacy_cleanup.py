"""`./dev redis-legacy`: keys written before the workspace scoping are counted per pattern (dry run by
default), removed with --delete, and nothing else is touched: not the scoped keys of today, not Dify's
own data in the same database. Against the real Redis (db 15, this test's own key names; nothing is
deleted there) and a private redis-server (where --delete runs through the command itself)."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from devtools.redis_legacy import DELETE_BATCH, clean
from gateway.state.keys import LEGACY_PATTERNS, PREFIX, Keys
from tests.private_redis import PrivateRedis

REDIS_URL = "redis://127.0.0.1:6379/15"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis


def legacy_keys(token: str) -> dict[str, list[str]]:
    """Keys as the unscoped versions wrote them, per legacy pattern, all containing `token`."""
    return {
        f"{PREFIX}:approval:*": [f"{PREFIX}:approval:{{PO-{token}}}:record", f"{PREFIX}:approval:{{PO-{token}}}:history"],
        f"{PREFIX}:job:*": [f"{PREFIX}:job:{token}:meta", f"{PREFIX}:job:{token}:res"],
        f"{PREFIX}:jobs:*": [f"{PREFIX}:jobs:open:{token}"],
        f"{PREFIX}:budget:*": [f"{PREFIX}:budget:{token}:plugin:all:day:2026-01-01"],
        f"{PREFIX}:cache:*": [f"{PREFIX}:cache:{token}"],
        f"{PREFIX}:rl:*": [f"{PREFIX}:rl:{token}:k:pause"],
        f"{PREFIX}:breaker:*": [f"{PREFIX}:breaker:{token}:m", f"{PREFIX}:breaker:{token}:m:failures"],
        f"{PREFIX}:metrics:*": [f"{PREFIX}:metrics:{token}"],
    }


def scoped_keys(token: str) -> list[str]:
    """Today's keys, of every family: none may match a legacy pattern."""
    keys = Keys.for_api_key(f"sk-{token}")
    base = f"http://{token}.test/v1"
    return [
        keys.approval(f"PO-{token}", "record"),
        keys.approval_dead_letters(),
        keys.approval_link(token),
        keys.approval_limits("day"),
        keys.jobs_open(),
        keys.job(token, "meta"),
        keys.budget(f"job:{token}"),
        keys.cache(token),
        keys.gateway(base, "breaker:m"),
        keys.gateway(base, "rl:k:pause"),
        keys.metrics("v1"),
    ]


def write(client: redis.Redis, names: list[str]) -> None:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.set(name, "x", ex=600)
    pipe.execute()


def test_the_legacy_patterns_match_the_old_names_and_never_todays() -> None:
    token = uuid.uuid4().hex
    for pattern, names in legacy_keys(token).items():
        assert pattern in LEGACY_PATTERNS
        assert all(fnmatch.fnmatchcase(name, pattern) for name in names), (pattern, names)
    assert set(legacy_keys(token)) == set(LEGACY_PATTERNS)  # every family of old data is covered
    for name in scoped_keys(token):
        assert not any(fnmatch.fnmatchcase(name, pattern) for pattern in LEGACY_PATTERNS), name


def test_dry_run_counts_per_pattern_and_deletes_nothing() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    token = uuid.uuid4().hex
    old = legacy_keys(token)
    write(client, [name for names in old.values() for name in names] + scoped_keys(token) + [f"dify:{token}"])
    # Only this test's keys: the real patterns narrowed to names holding its token (other tests share db 15).
    narrowed = {pattern: pattern[:-1] + f"*{token}*" for pattern in LEGACY_PATTERNS}
    report = clean(client, patterns=narrowed.values())
    assert report.found == {narrowed[p]: len(names) for p, names in old.items()}
    assert report.deleted == {}
    assert client.exists(*[name for names in old.values() for name in names]) == sum(len(n) for n in old.values())
    # The command itself on db 15: a dry run, whatever else is there; its count includes ours.
    done = subprocess.run(
        [sys.executable, "-m", "devtools.redis_legacy", REDIS_URL], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    lines = {line.split()[0]: int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith(PREFIX)}
    assert set(lines) == set(LEGACY_PATTERNS)
    assert all(lines[p] >= len(old[p]) for p in LEGACY_PATTERNS), done.stdout
    assert "dry run: nothing deleted" in done.stdout
    assert client.exists(*scoped_keys(token), f"dify:{token}") == len(scoped_keys(token)) + 1
    client.delete(*[name for names in old.values() for name in names], *scoped_keys(token), f"dify:{token}")


def test_delete_removes_every_legacy_key_and_nothing_else(private_redis: PrivateRedis) -> None:
    client = redis.Redis.from_url(private_redis.url)
    token = uuid.uuid4().hex
    old = legacy_keys(token)
    many = [f"{PREFIX}:cache:{token}-{i}" for i in range(DELETE_BATCH * 2 + 7)]  # more than one SCAN step and batch
    kept = [*scoped_keys(token), f"dify:{token}", f"other-app:{PREFIX}:cache:{token}"]
    write(client, [name for names in old.values() for name in names] + many + kept)
    done = subprocess.run(
        [sys.executable, "-m", "devtools.redis_legacy", "--delete", private_redis.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert private_redis.password not in done.stdout + done.stderr  # the URL (and its password) never printed
    counts = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith(PREFIX)}
    assert f"{len(old[f'{PREFIX}:cache:*']) + len(many)} keys, {len(old[f'{PREFIX}:cache:*']) + len(many)} deleted" in counts[f"{PREFIX}:cache:*"]
    assert "2 keys, 2 deleted" in counts[f"{PREFIX}:breaker:*"]
    assert sorted(k.decode() for k in client.scan_iter(count=1000)) == sorted(kept)


def test_an_unreachable_or_malformed_url_says_what_to_fix_without_repeating_it() -> None:
    unreachable = subprocess.run(
        [sys.executable, "-m", "devtools.redis_legacy", "redis://:hunter2-secret@127.0.0.1:1/0"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert unreachable.returncode == 1 and "cannot reach Redis at 127.0.0.1:1/0" in unreachable.stderr
    assert "hunter2-secret" not in unreachable.stdout + unreachable.stderr
    malformed = subprocess.run(
        [sys.executable, "-m", "devtools.redis_legacy", "http://:hunter2-secret@x"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert malformed.returncode == 2 and "redis_url must start with redis://" in malformed.stderr
    assert "hunter2-secret" not in malformed.stdout + malformed.stderr
