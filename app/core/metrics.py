"""Process-wide HTTP metrics (Prometheus), observed by the request middleware.

Counted per process: behind several uvicorn workers each answers `/metrics` with its own counters
unless `PROMETHEUS_MULTIPROC_DIR` is set (see docs/operating.md), the usual Prometheus way.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("rekisteri_http_requests", "HTTP requests answered, by route template and status",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram("rekisteri_http_request_duration_seconds", "Time to answer, by route template and status",
                         ["method", "route", "status"], registry=REGISTRY,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))


def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request."""
    labels = (method, route, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_LATENCY.labels(*labels).observe(seconds)


def http_registry() -> CollectorRegistry:
    """The registry `/metrics` renders: this process's, or every worker's under PROMETHEUS_MULTIPROC_DIR."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
