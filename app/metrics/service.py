"""The `/metrics` document: the process's HTTP metrics plus gauges read from the database at scrape time.

Adding a gauge is a function beside its data and one line in `app/wiring.py` (`wiring.gauges += [...]`):

    async def sealing_lag(session, now):
        return [({}, 0.42)]                                    # (labels, value) rows

    GAUGES = [Gauge("rekisteri_audit_sealing_lag_seconds", "Age of the oldest unsealed audit entry",
                    collect=sealing_lag)]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, metrics
from app.db.session import Database

Rows = Iterable[tuple[dict[str, str], float]]
Collect = Callable[[AsyncSession, datetime], Awaitable[Rows]]
Probe = Callable[[Database], Rows]


@dataclass(frozen=True)
class Gauge:
    """A gauge whose rows are read when Prometheus scrapes."""

    name: str
    help: str
    labels: Sequence[str] = ()
    # `collect` reads the database in the scrape's transaction; `probe` looks at this process.
    collect: Collect | None = None
    probe: Probe | None = None


class _Snapshot:
    """A prometheus-client collector over rows gathered before rendering (collectors cannot await)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


async def render(session: AsyncSession, database: Database, *, gauges: Sequence[Gauge]) -> bytes:
    """The Prometheus text document: HTTP counters of this process, then every gauge of the wiring."""
    now = clock.utcnow()
    families = []
    for gauge in gauges:
        rows = gauge.probe(database) if gauge.probe else await gauge.collect(session, now)  # type: ignore[misc]
        family = GaugeMetricFamily(gauge.name, gauge.help, labels=list(gauge.labels))
        for labels, value in rows:
            family.add_metric([labels[name] for name in gauge.labels], value)
        families.append(family)
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Snapshot(families))
    return generate_latest(metrics.http_registry()) + generate_latest(scraped)
