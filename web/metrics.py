"""``/metrics``: Prometheus figures read from the store at each scrape.

A collector on a registry of the app's own (never the global one, so two apps in one
process, as in the tests, do not mix): jobs by state and by model, jobs finished and
failed, tagging latency and queue wait as histograms (``storage.timings``), and the
app's own uploads. ``actiontag_database_up`` is 1 when the store answered the scrape,
0 when it could not be reached: then the store's figures are left out, not made up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from storage import timings
from storage.db import DatabaseUnavailable
from storage.queries.models import models
from storage.queries.stats import stats

log = logging.getLogger(__name__)

TAGGING_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
QUEUE_WAIT_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400)


class StoreCollector(Collector):
    """The jobs' figures, counted by the database when Prometheus scrapes."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self.sessions = sessions
        self.was_up = True

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        up = GaugeMetricFamily("actiontag_database_up", "Whether the store answered this scrape")
        try:
            with self.sessions() as session:
                counted = stats(session)
                registered = models(session)
                tagging = timings.histogram(session, "tagging", TAGGING_BUCKETS)
                waiting = timings.histogram(session, "queue_wait", QUEUE_WAIT_BUCKETS)
        except DatabaseUnavailable as exc:
            # Prometheus scrapes all along an outage: say it once, when it starts.
            if self.was_up:
                log.warning("metrics: %s", exc)
            self.was_up = False
            up.add_metric([], 0)
            yield up
            return
        self.was_up = True
        up.add_metric([], 1)
        yield up
        by_state = GaugeMetricFamily("actiontag_jobs", "Jobs by state", labels=["state"])
        for state, count in counted.jobs_by_state.items():
            by_state.add_metric([state], count)
        yield by_state
        finished = CounterMetricFamily(
            "actiontag_jobs_finished", "Jobs that ended done (all models)"
        )
        finished.add_metric([], counted.jobs_by_state.get("done", 0))
        yield finished
        failed = CounterMetricFamily("actiontag_jobs_failed", "Jobs that ended failed")
        failed.add_metric([], counted.jobs_by_state.get("failed", 0))
        yield failed
        per_model = GaugeMetricFamily(
            "actiontag_model_jobs", "Jobs by model and state", labels=["model", "state"]
        )
        for model in registered:
            for state, count in model.jobs_by_state.items():
                per_model.add_metric([model.sha256[:12], state], count)
        yield per_model
        videos = GaugeMetricFamily("actiontag_videos", "Videos recorded")
        videos.add_metric([], counted.videos)
        yield videos
        yield _histogram(
            "actiontag_tagging_seconds", "Start to end of done and failed jobs", tagging
        )
        yield _histogram("actiontag_queue_wait_seconds", "Queued to started", waiting)


def _histogram(name: str, documentation: str, found: timings.Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation)
    buckets = [(f"{bound:g}", count) for bound, count in found.buckets]
    buckets.append(("+Inf", found.count))
    family.add_metric([], buckets, found.total_s)
    return family


class Metrics:
    """The app's registry: the store's figures and the uploads it took."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(sessions))
        self.uploads = Counter(
            "actiontag_web_uploads",
            "Files received by the web app, by outcome",
            ["outcome"],
            registry=self.registry,
        )
