"""The Prometheus text exposition of one workspace's figures, written by prometheus_client."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gateway.metrics.calls import MetricsSink
from gateway.metrics.catalog import LATENCY_BUCKETS, METRIC_PREFIX, METRICS, TTFT_BUCKETS, Figures


class FiguresCollector:
    """Metric families for prometheus_client from one workspace's figures, read at each scrape."""

    def __init__(self, figures: Callable[[], Figures], scope: str) -> None:
        self._figures = figures
        self.scope = scope

    def describe(self) -> list[Any]:
        return []  # collected at each scrape; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        figures = self._figures()
        info = GaugeMetricFamily(
            METRIC_PREFIX + "metrics_scope",
            "Where these figures come from (they are this endpoint's workspace's only): scope=redis is the sum over "
            "every plugin process sharing the Redis; scope=process is the one plugin process that answered this scrape.",
            labels=["scope"],
        )
        info.add_metric([self.scope], 1)
        yield info
        by_name: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        for key, value in figures.items():
            by_name.setdefault(key[0], []).append((key[1:], value))
        for name, (kind, help_text, labels) in METRICS.items():
            if kind == "counter":
                family: Any = CounterMetricFamily(METRIC_PREFIX + name, help_text, labels=list(labels))
                for values, value in sorted(by_name.get(name, [])):
                    family.add_metric(list(values), value)
            elif kind == "gauge":
                family = GaugeMetricFamily(METRIC_PREFIX + name, help_text, labels=list(labels))
                for values, value in sorted(by_name.get(name, [])):
                    family.add_metric(list(values), value)
            else:
                family = HistogramMetricFamily(METRIC_PREFIX + name, help_text, labels=list(labels))
                buckets = LATENCY_BUCKETS if name == "request_duration_seconds" else TTFT_BUCKETS
                for values, total, counts in _histograms(by_name, name, len(buckets)):
                    cumulative, running = [], 0.0
                    for bound, n in zip([*map(_bound, buckets), "+Inf"], counts, strict=True):
                        running += n
                        cumulative.append((bound, running))
                    family.add_metric(list(values), cumulative, total)  # its _count is the +Inf bucket
            yield family


def _bound(value: float) -> str:
    return repr(float(value))


def _histograms(
    by_name: dict[str, list[tuple[tuple[str, ...], float]]], name: str, size: int
) -> Iterable[tuple[tuple[str, ...], float, list[float]]]:
    """(label values, sum, per-bucket counts) of each series of histogram `name`."""
    counts: dict[tuple[str, ...], list[float]] = {}
    for values, value in by_name.get(f"{name}:bucket", []):
        labels, index = values[:-1], int(values[-1])
        row = counts.setdefault(labels, [0.0] * (size + 1))
        if 0 <= index <= size:
            row[index] += value
    sums = dict(by_name.get(f"{name}:sum", []))
    for labels in sorted(counts):
        yield labels, sums.get(labels, 0.0), counts[labels]


def exposition(sink: MetricsSink) -> bytes:
    """The Prometheus text exposition of `sink`'s figures, written by prometheus_client."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector(sink.figures, sink.scope))  # type: ignore[arg-type]
    return generate_latest(registry)
