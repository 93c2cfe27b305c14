"""GET /metrics: the server's request figures and its services' metrics, as JSON or in Prometheus' text format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily

from tandem.server import TandemServer

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_json(tandem: TandemServer) -> dict[str, Any]:
    """The first service's metrics at the top level (the catalog's are the seed's shape), plus the server's own."""
    services = tandem.services.report("metrics")
    status = tandem.status()
    merged: dict[str, Any] = {}
    for report in services.values():
        merged.update(report)
    merged["server"] = {"uptime_s": status["uptime_s"], "sessions": status["sessions"], "requests": status["requests"]}
    merged["services"] = sorted(services)
    return merged


class _Snapshot:
    """A prometheus_client collector over one snapshot of the figures (nothing is kept between scrapes)."""

    def __init__(self, tandem: TandemServer) -> None:
        self.tandem = tandem

    def collect(self) -> Iterator[Metric]:
        status = self.tandem.status()
        uptime = GaugeMetricFamily("tandem_uptime_seconds", "Seconds since the server started.")
        uptime.add_metric([], status["uptime_s"])
        yield uptime
        sessions = GaugeMetricFamily("tandem_sessions", "Open MCP sessions by transport.", labels=["transport"])
        for transport, count in status["sessions_by_transport"].items():
            sessions.add_metric([transport], count)
        yield sessions
        yield from _method_families("tandem_request", "MCP requests", status["requests"])
        for name, report in self.tandem.services.report("metrics").items():
            performance = report.get("performance", {})
            yield from _method_families(f"tandem_{name}_query", f"{name} queries", performance.get("by_method", {}))
            cache = report.get("cache")
            if cache:
                for key in ("hits", "misses", "evictions"):
                    counter = CounterMetricFamily(f"tandem_{name}_cache_{key}", f"{name} answer cache {key}.")
                    counter.add_metric([], cache.get(key, 0))
                    yield counter
                ratio = GaugeMetricFamily(f"tandem_{name}_cache_hit_ratio", f"{name} answer cache hit ratio.")
                ratio.add_metric([], cache.get("hit_rate", 0.0))
                yield ratio
            patterns = report.get("patterns")
            if patterns:
                total = GaugeMetricFamily(f"tandem_{name}_patterns", "Stored orchestration patterns.")
                total.add_metric([], patterns.get("total", 0))
                yield total
                rate = GaugeMetricFamily(f"tandem_{name}_pattern_success_ratio", "Mean success rate of patterns.")
                rate.add_metric([], patterns.get("avg_success_rate", 0.0))
                yield rate
        for name, health in self.tandem.services.report("health").items():
            indexes = health.get("indexes")
            if indexes:
                items = GaugeMetricFamily(f"tandem_{name}_indexed", f"Definitions indexed by {name}.", labels=["kind"])
                for kind, count in indexes.items():
                    items.add_metric([kind], count)
                yield items
            if "memory_mb" in health:
                memory = GaugeMetricFamily("tandem_resident_memory_bytes", "Resident memory of the server process.")
                memory.add_metric([], health["memory_mb"] * 1024 * 1024)
                yield memory


def _method_families(prefix: str, what: str, by_method: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    errors = CounterMetricFamily(f"{prefix}_errors", f"{what} that failed, by method.", labels=["method"])
    latency = SummaryMetricFamily(f"{prefix}_duration_milliseconds", f"{what} latency by method.", labels=["method"])
    quantiles = GaugeMetricFamily(
        f"{prefix}_duration_quantile_milliseconds",
        f"{what} latency percentiles by method.",
        labels=["method", "quantile"],
    )
    for method, figures in by_method.items():
        count = figures.get("count", 0)
        errors.add_metric([method], figures.get("errors", 0))
        latency.add_metric([method], count_value=count, sum_value=figures.get("mean_ms", 0.0) * count)
        for key, q in (("p50_ms", "0.5"), ("p95_ms", "0.95"), ("p99_ms", "0.99")):
            if key in figures:
                quantiles.add_metric([method, q], figures[key])
    yield errors
    yield latency
    yield quantiles


def prometheus_text(tandem: TandemServer) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(tandem))  # type: ignore[arg-type]
    return generate_latest(registry)
