"""Prometheus metrics for ``/metrics``, in a registry of the venue's own (one per process).

Recorded as things happen:

* ``rialto_http_request_duration_seconds{method,route,status}`` histogram
  (``route`` is the path template, so ids do not explode the label set);
* ``rialto_orders_total{result}`` (``accepted`` / ``rejected``): orders/s is
  ``rate(rialto_orders_total[1m])``; ``rialto_commands_total{kind}``;
* ``rialto_journal_fsync_seconds{log}`` histogram and
  ``rialto_journal_batch_records{log}`` histogram, fed by the journals'
  ``on_batch`` callback (the writer thread);
* ``rialto_websocket_clients`` gauge; ``rialto_rate_limited_total{scope}``.

Read at scrape time from the venue (``VenueGauges``): engine command time
(``EngineShard.command_seconds``), the engine sequence, the projection's
position and lag, journal totals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class VenueGauges(Collector):
    """Values read from the running venue when Prometheus scrapes."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        values = self.read()
        counters = {
            "engine_command_seconds": "Seconds the engine spent applying commands",
            "engine_commands": "Commands the engine applied since start",
            "journal_fsyncs": "fdatasync calls on journal segments",
            "journal_records": "Records appended to the journals",
            "projection_records": "Records the projection applied since start",
        }
        gauges = {
            "engine_sequence": "The engine's sequence (last applied command)",
            "projection_position": "The seq of the last record the projection applied",
            "projection_lag": "Commands applied by the engine and not yet by the projection",
            "snapshot_seq": "The seq covered by the latest snapshot",
        }
        for name, help_text in counters.items():
            if name in values:
                family = CounterMetricFamily(f"rialto_{name}", help_text)
                family.add_metric([], values[name])
                yield family
        for name, help_text in gauges.items():
            if name in values:
                gauge = GaugeMetricFamily(f"rialto_{name}", help_text)
                gauge.add_metric([], values[name])
                yield gauge


class GatewayMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only double the scrape
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_seconds = Histogram(
            "rialto_http_request_duration_seconds", "HTTP request latency", ["method", "route", "status"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.orders = Counter("rialto_orders_total", "Orders placed, by result", ["result"], registry=r)
        self.commands = Counter("rialto_commands_total", "Commands submitted by the gateway, by kind", ["kind"],
                                registry=r)
        self.fsync_seconds = Histogram(
            "rialto_journal_fsync_seconds", "Journal group-commit fsync time", ["log"], buckets=FSYNC_BUCKETS,
            registry=r,
        )
        self.batch_records = Histogram(
            "rialto_journal_batch_records", "Records per journal group commit", ["log"], buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.websocket_clients = Gauge("rialto_websocket_clients", "Connected WebSocket clients", registry=r)
        self.rate_limited = Counter("rialto_rate_limited_total", "Requests refused by a rate limit", ["scope"],
                                    registry=r)

    def journal_observer(self, log: str) -> Callable[[int, int, float], None]:
        """An ``on_batch(records, bytes, fsync_seconds)`` callback for a journal (runs on its writer thread)."""
        fsync = self.fsync_seconds.labels(log)
        batch = self.batch_records.labels(log)

        def observe(records: int, nbytes: int, fsync_seconds: float) -> None:
            fsync.observe(fsync_seconds)
            batch.observe(records)

        return observe

    def add_venue_gauges(self, read: Callable[[], dict[str, float]]) -> None:
        self.registry.register(VenueGauges(read))

    def render(self) -> bytes:
        return generate_latest(self.registry)
