"""Prometheus metrics of one model server (served at ``/metrics``).

* ``flowyard_serving_requests_total{model,protocol,endpoint,code}``
* ``flowyard_serving_request_duration_seconds{model,protocol,endpoint}`` (histogram)
* ``flowyard_serving_batch_size{model}`` (histogram of merged batch rows)
* ``flowyard_serving_inflight_requests{model}``

Label children are cached, so recording a request is two dict look-ups and two locked adds.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str) -> None:
        self.model = model
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "flowyard_serving_requests",
            "Inference requests answered.",
            ["model", "protocol", "endpoint", "code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "flowyard_serving_request_duration_seconds",
            "Time to answer a request.",
            ["model", "protocol", "endpoint"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._batch = Histogram(
            "flowyard_serving_batch_size",
            "Rows per merged model call of the batcher.",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        ).labels(model)
        self.inflight = Gauge(
            "flowyard_serving_inflight_requests",
            "Requests being answered now.",
            ["model"],
            registry=self.registry,
        ).labels(model)
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def observe(self, protocol: str, endpoint: str, code: int, seconds: float) -> None:
        counter = self._counters.get((protocol, endpoint, code))
        if counter is None:
            counter = self._requests.labels(self.model, protocol, endpoint, str(code))
            self._counters[(protocol, endpoint, code)] = counter
        counter.inc()
        hist = self._histograms.get((protocol, endpoint))
        if hist is None:
            hist = self._latency.labels(self.model, protocol, endpoint)
            self._histograms[(protocol, endpoint)] = hist
        hist.observe(seconds)

    def batch(self, rows: int) -> None:
        self._batch.observe(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
