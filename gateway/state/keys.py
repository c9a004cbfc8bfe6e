"""Every name the plugin gives shared state: one prefix, one owner (the workspace), one hash tag per unit.

One plugin process serves every workspace of a Dify instance, and workspaces may share one Redis. So
every key names its owner: the workspace's ``scope``. dify_plugin 0.10 does not tell a tool its tenant,
so a workspace is known by the credential that identifies it, the gateway API key: the scope is a keyed
digest of it (never the key, and not the digest used elsewhere, so nothing the plugin prints names it).
Two workspaces with the same API key are one customer of the gateway and share one scope.

Redis Cluster runs a script only when all of its keys hash to one slot. The slot is chosen by the
first ``{...}`` in a key (the hash tag), so each unit that one script or transaction touches has one
tag: an approval record and its history, idempotency keys and summary (``{scope:a:<request id>}``); a
workspace's jobs and their open set (``{scope:jobs}``); its budgets (``{scope:budget}``); its
auto-approval limits (``{scope:limits}``); the rate-limit buckets, pause and breakers of one gateway
(``{scope:g:<gateway digest>}``); its metrics (``{scope:metrics}``). Keys read alone (the reply cache,
link nonces) have no tag, so they spread over the cluster.

No other file spells the prefix: everything asks ``Keys`` (and ``PREFIX`` for the cleanup of data
written before the scoping).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

PREFIX = "holysheep"
# Data written before the workspace scoping (round 5 and earlier) lives under these; nothing reads them.
LEGACY_PATTERNS = (
    f"{PREFIX}:approval:*",
    f"{PREFIX}:job:*",
    f"{PREFIX}:jobs:*",
    f"{PREFIX}:budget:*",
    f"{PREFIX}:cache:*",
    f"{PREFIX}:rl:*",
    f"{PREFIX}:breaker:*",
    f"{PREFIX}:metrics:*",
)
_SCOPE_KEY = b"holysheep/workspace-scope/v1"


def workspace_scope(api_key: str) -> str:
    """The workspace's owner name in shared state: a keyed digest of its API key (96 bits, never the key)."""
    return "w" + hmac.new(_SCOPE_KEY, api_key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:24]


def digest(text: str, length: int = 16) -> str:
    """A short stable name for a value that must not appear in a key (a URL, an id, a nonce)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def _checked(part: str, what: str) -> str:
    if not part or "{" in part or "}" in part or not part.isprintable():
        raise ValueError(f"{what}: a non-empty printable string without '{{' or '}}'")
    return part


@dataclass(frozen=True)
class Keys:
    """The names of one workspace's shared state."""

    scope: str

    def __post_init__(self) -> None:
        _checked(self.scope, "scope")

    @classmethod
    def for_api_key(cls, api_key: str) -> Keys:
        return cls(workspace_scope(api_key))

    def _tagged(self, tag: str, rest: str) -> str:
        return f"{PREFIX}:{{{self.scope}:{tag}}}:{rest}"

    # ------------------------------------------------------------------ approval
    def approval(self, request_id: str, part: str) -> str:
        """``record``, ``history``, ``summary``, ``idem:<digest>``, ``notified:<version>`` of one request."""
        return self._tagged(f"a:{_checked(request_id, 'request_id')}", part)

    def approval_dead_letters(self) -> str:
        return self._tagged("dlq", "approval:dlq")

    def approval_dead_letter_replayed(self, entry_id: str) -> str:
        """The replay claim of one dead letter: the stream's tag, so the claim and the XDEL are one MULTI."""
        return self._tagged("dlq", f"approval:dlq:replayed:{_checked(entry_id, 'entry_id')}")

    def approval_link_secrets(self) -> str:
        """Fingerprints of the link secrets this workspace signed links with (the endpoint acts for a
        workspace only with a secret the workspace used)."""
        return f"{PREFIX}:{self.scope}:link-secrets"

    def approval_link(self, nonce: str) -> str:
        """The single-use marker of one approval link (the nonce's digest, never the nonce)."""
        return f"{PREFIX}:{self.scope}:link:{digest(nonce, 64)}"

    def approval_limits(self, part: str) -> str:
        """Auto-approval limit counters: one tag, so one script checks and counts every limit at once."""
        return self._tagged("limits", part)

    # ------------------------------------------------------------------ jobs
    def jobs_open(self) -> str:
        """The workspace's open jobs, the set its workers look at (same slot as the jobs' keys)."""
        return self._tagged("jobs", "open")

    def job(self, job_id: str, part: str) -> str:
        """``meta``, ``items``, ``res``, ``sent``, ``lat`` of one job."""
        return self._tagged("jobs", f"job:{_checked(job_id, 'job_id')}:{part}")

    # ------------------------------------------------------------------ spend
    def budget(self, counter: str) -> str:
        """A budget counter (``gateway.spend.budget.Charge.key``): one tag, so one script reserves every budget."""
        return self._tagged("budget", counter)

    def cache(self, entry: str) -> str:
        """A reply-cache entry (its request digest): no tag, entries spread over a cluster."""
        return f"{PREFIX}:{self.scope}:cache:{entry}"

    # ------------------------------------------------------------------ gateway state
    def gateway(self, base_url: str, part: str) -> str:
        """Rate-limit buckets, the 429 pause and breakers of one gateway (by its URL's digest): one tag,
        so the combined breaker-and-pause read is one script."""
        return self._tagged(f"g:{digest(base_url)}", part)

    # ------------------------------------------------------------------ metrics
    def metrics(self, part: str) -> str:
        return self._tagged("metrics", part)


class StorageKeys:
    """Names in Dify's plugin storage, which Dify already keeps per workspace and plugin (no scope)."""

    @staticmethod
    def approval_record(request_id: str) -> str:
        return f"{PREFIX}:approval:{request_id}"

    @staticmethod
    def approval_idempotency(request_id: str, idempotency_key: str) -> str:
        return f"{PREFIX}:approval:{request_id}:idem:{digest(idempotency_key, 64)}"


__all__ = ["LEGACY_PATTERNS", "PREFIX", "Keys", "StorageKeys", "digest", "workspace_scope"]
