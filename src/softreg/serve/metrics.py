"""Request counts, latencies and batch sizes, written in Prometheus' text format for /metrics."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)  # seconds
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)  # rows scored at once


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    def escape(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs) + "}" if pairs else ""


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1
        self.total += value
        self.n += 1


class Metrics:
    """Thread-safe counters and histograms keyed by label tuples."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple, int] = defaultdict(int)
        self.instances: dict[tuple, int] = defaultdict(int)
        self.latency: dict[tuple, _Histogram] = {}
        self.batches: dict[tuple, _Histogram] = {}

    def request(self, route: str, method: str, code: int, seconds: float) -> None:
        key = (("route", route), ("method", method), ("code", str(code)))
        with self._lock:
            self.requests[key] += 1
            self.latency.setdefault(key[:2], _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def scored(self, model: str, rows: int) -> None:
        """One request's instances for ``model``."""
        with self._lock:
            self.instances[(("model", model),)] += rows

    def batch(self, model: str, rows: int) -> None:
        """One call of the model on ``rows`` rows (one or more requests)."""
        with self._lock:
            self.batches.setdefault((("model", model),), _Histogram(BATCH_BUCKETS)).observe(rows)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            lines += ["# HELP softreg_requests_total HTTP requests by route, method and status code.",
                      "# TYPE softreg_requests_total counter"]
            lines += [f"softreg_requests_total{_labels(k)} {v}" for k, v in sorted(self.requests.items())]
            lines += ["# HELP softreg_instances_total Instances scored, by model.",
                      "# TYPE softreg_instances_total counter"]
            lines += [f"softreg_instances_total{_labels(k)} {v}" for k, v in sorted(self.instances.items())]
            lines += self._histograms("softreg_request_duration_seconds",
                                      "Time from request to response, by route and method.", self.latency)
            lines += self._histograms("softreg_batch_rows", "Rows per call of a model (micro-batches).",
                                      self.batches)
        return "\n".join(lines) + "\n"

    @staticmethod
    def _histograms(name: str, help_text: str, table: dict[tuple, _Histogram]) -> list[str]:
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for key, hist in sorted(table.items()):
            for edge, count in zip(hist.buckets, hist.counts):
                lines.append(f"{name}_bucket{_labels(key + (('le', f'{edge:g}'),))} {count}")
            lines.append(f"{name}_bucket{_labels(key + (('le', '+Inf'),))} {hist.n}")
            lines.append(f"{name}_sum{_labels(key)} {hist.total:.6f}")
            lines.append(f"{name}_count{_labels(key)} {hist.n}")
        return lines
