"""Counters, gauges and histograms for the request path: plain arithmetic now, Prometheus at scrape time.

prometheus_client's metric objects take a lock and validate on every update
(one to three microseconds each); a request records half a dozen. The code that
records per request runs on one event loop thread, so these collectors keep
plain floats in dicts keyed by label values — an update is a dict lookup and an
addition — and build the Prometheus families only when scraped. A scrape from
another thread (the gRPC services' metrics thread) reads a copy of the dict
under the GIL; at worst it sees a request's count before its sum.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

Key = tuple[str, ...]


class _LoopMetric(Collector):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        registry.register(self)

    def describe(self) -> Iterable[Metric]:
        return []


class LoopCounter(_LoopMetric):
    """``<name>_total`` by label values."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        super().__init__(name, documentation, labelnames, registry)
        self._values: dict[Key, float] = {}

    def inc(self, key: Key, amount: float = 1.0) -> None:
        values = self._values
        values[key] = values.get(key, 0.0) + amount

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, value in list(self._values.items()):
            family.add_metric(key, value)
        yield family


class LoopGauge(_LoopMetric):
    """A gauge moved up and down by label values (e.g. requests in flight)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        super().__init__(name, documentation, labelnames, registry)
        self._values: dict[Key, float] = {}

    def add(self, key: Key, amount: float) -> None:
        values = self._values
        values[key] = values.get(key, 0.0) + amount

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, value in list(self._values.items()):
            family.add_metric(key, value)
        yield family


class LoopHistogram(_LoopMetric):
    """Cumulative ``le`` buckets, ``_count`` and ``_sum`` by label values."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float],
                 registry: CollectorRegistry) -> None:
        super().__init__(name, documentation, labelnames, registry)
        self.bounds = tuple(sorted(float(b) for b in buckets))
        self._les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        #: key -> [count in each bucket (not cumulative; the last is +Inf), ..., sum]
        self._values: dict[Key, list[float]] = {}

    def observe(self, key: Key, value: float) -> None:
        entry = self._values.get(key)
        if entry is None:
            entry = self._values[key] = [0.0] * (len(self.bounds) + 2)
        entry[bisect_left(self.bounds, value)] += 1
        entry[-1] += value

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, entry in list(self._values.items()):
            counts, total = entry[:-1], entry[-1]
            cumulative, running = [], 0.0
            for le, count in zip(self._les, counts, strict=True):
                running += count
                cumulative.append((le, running))
            family.add_metric(list(key), cumulative, total)
        yield family
