"""Finds (and with --delete removes) Redis data written before the workspace scoping.

Since every shared-state key names its workspace (`gateway.state.keys`), keys written by earlier versions
(`gateway.state.keys.LEGACY_PATTERNS`: approval records, jobs, budgets, the reply cache, rate limits,
breakers, metrics) are never read again; most expire on their own (cache, limits, breakers, budget
periods, jobs after job_ttl_hours), approval records and the metrics hash do not.

    ./dev redis-legacy redis://:password@host:6379/0            # dry run: counts per pattern
    ./dev redis-legacy --delete redis://:password@host:6379/0   # removes them (UNLINK)

Run --delete once every plugin process runs the scoped version: an older process still writes old keys.
Keys are found with SCAN (never KEYS, which blocks the server), in batches, and only keys matching the
legacy patterns are touched: Dify's own data in the same database is left alone. On a Redis Cluster
(`redis_url` naming one) every primary is scanned. The URL is never printed (it usually holds a password).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import redis

from gateway.config import check_redis_url
from gateway.errors import FieldError
from gateway.state.keys import LEGACY_PATTERNS
from gateway.state.redis_connection import CONNECTION_ERRORS, describe_redis_error, redis_client

SCAN_COUNT = 1000  # keys asked for per SCAN step: bounded work per call, the server stays responsive
DELETE_BATCH = 500  # keys per pipeline of UNLINKs (one key each, so a cluster routes every one)


@dataclass
class Report:
    """Keys found (and removed) per legacy pattern."""

    found: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)

    def lines(self, *, delete: bool) -> list[str]:
        out = []
        for pattern, count in self.found.items():
            done = f", {self.deleted.get(pattern, 0)} deleted" if delete else ""
            out.append(f"{pattern:<24} {count} keys{done}")
        total = sum(self.found.values())
        if delete:
            out.append(f"total: {total} legacy keys found, {sum(self.deleted.values())} deleted")
        else:
            out.append(f"total: {total} legacy keys (dry run: nothing deleted; add --delete to remove them)")
        return out


def scan(client: redis.Redis, pattern: str) -> Iterator[bytes]:
    """Every key matching `pattern`, by SCAN (a key may come twice when the keyspace is rehashed)."""
    yield from client.scan_iter(match=pattern, count=SCAN_COUNT)


def _unlink(client: redis.Redis, keys: Iterable[bytes]) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.unlink(key)
    return sum(int(n or 0) for n in pipe.execute())


def clean(client: redis.Redis, *, delete: bool = False, patterns: Iterable[str] = LEGACY_PATTERNS) -> Report:
    """Counts the keys of each pattern; with `delete`, removes them in batches as they are found."""
    report = Report()
    for pattern in patterns:
        seen: set[bytes] = set()
        batch: list[bytes] = []
        deleted = 0
        for key in scan(client, pattern):
            if key in seen:
                continue
            seen.add(key)
            if delete:
                batch.append(key)
                if len(batch) >= DELETE_BATCH:
                    deleted += _unlink(client, batch)
                    batch = []
        if delete and batch:
            deleted += _unlink(client, batch)
        report.found[pattern] = len(seen)
        if delete:
            report.deleted[pattern] = deleted
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./dev redis-legacy",
        description="List (or with --delete remove) Redis keys written before the workspace scoping.",
    )
    parser.add_argument("redis_url", help="the plugin's redis_url, e.g. redis://:password@host:6379/0")
    parser.add_argument("--delete", action="store_true", help="remove the keys found (default: only count them)")
    args = parser.parse_args(argv)
    try:
        url = check_redis_url(args.redis_url)  # the plugin's own check: a message that never repeats the URL
    except FieldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not url:
        parser.error("give the redis_url to clean")
    client = redis_client(url)
    try:
        report = clean(client, delete=args.delete)
    except (*CONNECTION_ERRORS, redis.RedisError) as exc:
        print(f"error: {describe_redis_error(exc, client)}", file=sys.stderr)
        return 1
    print("\n".join(report.lines(delete=args.delete)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
