"""What every gateway call did, as figures Prometheus can scrape, and one structured log line per call.

The figures belong to a workspace (its ``gateway.state.keys`` scope): one plugin process serves every
workspace of a Dify instance, and each workspace's metrics endpoint shows its own figures only.

The client chain reports through a `WorkspaceMetrics` (`GatewayClient.metrics`): the client's workspace
and price table, over a store. It turns each call (`record_call`), attempt (`record_attempt`), breaker
transition and rate-limit wait into figures (a counter or a histogram bucket per metric and label values)
and hands them to the store with the workspace they belong to. Stores, chosen in
`gateway.state.backends.Backends.metrics_for`:

- `InProcessMetrics`: dicts in this process, per workspace (figures are per process);
- `RedisMetrics`: per workspace, one Redis hash shared by every plugin process (HINCRBY / HINCRBYFLOAT
  in one script call per workspace and write), keyed by metric and label values only: no secret, no
  prompt, no id. `WriteBehindMetrics` is the same, written when its owner (the jobs' flusher) says;
  `BufferedMetrics`, the clients' (`Backends.metrics_for`), keeps figures in process and writes them at
  most `FLUSH_EVERY` seconds later, at the end of a tool invocation (`Backends.flush_metrics`), before a scrape
  it answers and at exit: one round trip a second instead of one a call.

Label values come from fixed sets, the same in every process and after every restart, so the number of
series has a ceiling whatever users send: `model` is a model of the price table (the bundled one and the
administrator's ``price_overrides``, by its canonical name: aliases and dated names count as their model)
or ``custom``; `tool` a tool of this plugin or ``other``; `outcome` ``ok``, an error code of
`ERROR_CODES` or ``http_<status>`` (100-599), else ``other_error``; `type`, `status`, `state`,
`from_state` and `to_state` fixed sets (anything else is ``other``). The mapping is a function of the
value alone (and the price table), not a per-process cap: no id, prompt or other user text becomes a
label value, in any process.

Series that stop changing expire: a series (a counter, a gauge, or a histogram's buckets and sum
together) not written for `SERIES_TTL_SECONDS` is dropped, in Redis by the write script (a sorted set
holds each series' last stamp; the Redis here is 7.0, without HEXPIRE) and in this process when its
figures are read or added to. A workspace's two keys expire whole `SERIES_TTL_SECONDS` after its last
write, and share one hash tag, so every script call touches one slot of a Redis Cluster.

`FiguresCollector` turns a workspace's figures into metric families for prometheus_client, which writes
the exposition (`exposition()`); nothing here writes the text format by hand. Histograms keep their
bucket counts as figures, so they add up across processes like the counters do.

Modules: `catalog` (metric names, buckets, label sets), `calls` (the call record, its log line,
`WorkspaceMetrics`), `process_store` (`InProcessMetrics`), `redis_metrics` (`RedisMetrics`,
`WriteBehindMetrics`, `BufferedMetrics`), `prometheus` (the exposition). The names are re-exported here.
"""

from gateway.metrics.calls import CallRecord, MetricsSink, MetricsStore, WorkspaceMetrics, log_call, logger
from gateway.metrics.catalog import (
    BATCH_STATUSES,
    BREAKER_STATES,
    CUSTOM_MODEL,
    ERROR_CODES,
    HOUSEKEEPING_EVERY,
    LATENCY_BUCKETS,
    METRIC_PREFIX,
    METRICS,
    OTHER,
    OTHER_ERROR,
    PRUNE_PER_WRITE,
    SERIES_TTL_SECONDS,
    TOKEN_TYPES,
    TOOLS,
    TTFT_BUCKETS,
    Figures,
    Update,
    outcome_label,
    state_label,
    status_label,
    tool_label,
)
from gateway.metrics.process_store import InProcessMetrics
from gateway.metrics.prometheus import FiguresCollector, exposition
from gateway.metrics.redis_metrics import (
    CHANGED_PART,
    FIGURES_PART,
    FLUSH_EVERY,
    BufferedMetrics,
    RedisMetrics,
    WriteBehindMetrics,
)

__all__ = [
    "BATCH_STATUSES",
    "BREAKER_STATES",
    "CHANGED_PART",
    "CUSTOM_MODEL",
    "ERROR_CODES",
    "FIGURES_PART",
    "FLUSH_EVERY",
    "HOUSEKEEPING_EVERY",
    "LATENCY_BUCKETS",
    "METRICS",
    "METRIC_PREFIX",
    "OTHER",
    "OTHER_ERROR",
    "PRUNE_PER_WRITE",
    "SERIES_TTL_SECONDS",
    "TOKEN_TYPES",
    "TOOLS",
    "TTFT_BUCKETS",
    "BufferedMetrics",
    "CallRecord",
    "Figures",
    "FiguresCollector",
    "InProcessMetrics",
    "MetricsSink",
    "MetricsStore",
    "RedisMetrics",
    "Update",
    "WorkspaceMetrics",
    "WriteBehindMetrics",
    "exposition",
    "log_call",
    "logger",
    "outcome_label",
    "state_label",
    "status_label",
    "tool_label",
]
