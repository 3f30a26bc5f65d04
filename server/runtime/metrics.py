"""Prometheus metrics for one app: HTTP traffic, token throughput and latency, model state.

Each ``build_app`` owns a :class:`Metrics` with its own ``CollectorRegistry`` (tests build
many apps in one process; the global registry would refuse duplicate names).  Its sources:

- the HTTP layer counts requests by route template and status, and in-flight requests
  (``api/telemetry.py``);
- the inference path reports each generation through a :class:`GenerationObserver`: time to
  first token (from submission to the engine: queueing plus prompt evaluation) and the time
  between tokens;
- the engines' own monotonic counters (:class:`~llamita.server.engine.core.EngineStats`) are
  folded into Prometheus counters as deltas, at the end of every generation and at every
  scrape, so a model that is unloaded between two scrapes loses nothing;
- loaded models, running/queued requests and KV-cache occupancy are read at scrape time.

Metric names (all prefixed ``llamita_``)::

    http_requests_total{method,route,status}        http_requests_in_flight
    http_request_duration_seconds{route}             models_loaded
    prompt_tokens_evaluated_total{model}             prompt_tokens_cached_total{model}
    tokens_generated_total{model}                    requests_cancelled_total{model}
    time_to_first_token_seconds{model}               inter_token_seconds{model}
    requests_running{model}   requests_queued{model}  kv_cache_tokens{model}  kv_cache_capacity_tokens{model}
    model_healthy{model}      (0 once a model's engine has stopped; its next request reloads it)
    completions_shown_total{model,language}          completions_accepted_total{model,language}
    completions_partially_accepted_total{model,language}  completions_accepted_chars_total{model,language}
                              (reported by the language server: :class:`Acceptance`)
    key_requests_total{key,model}   key_prompt_tokens_total{key,model}   key_cached_tokens_total{key,model}
    key_generated_tokens_total{key,model}   key_engine_seconds_total{key,model}
        (usage per API key name since start, from :mod:`.usage`; ``key="-"`` on an open server)
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from llamita.server.engine import Engine

    from .runners import Runners
    from .usage import Usage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# FIM completions live in the 20 ms–2 s range; review prompts can take much longer.
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
# EngineStats field → the counter it feeds (name, help); each is labelled by model.
_FOLDED = {
    "prompt_tokens_evaluated": ("llamita_prompt_tokens_evaluated", "Prompt tokens run through the model"),
    "prompt_tokens_cached": ("llamita_prompt_tokens_cached", "Prompt tokens served from the KV cache"),
    "tokens_generated": ("llamita_tokens_generated", "Tokens sampled"),
    "aborted": (
        "llamita_requests_cancelled",
        "Generations aborted (client gone, or superseded by the same editor session)",
    ),
}


class Metrics:
    def __init__(self, runners: Runners, usage: Usage | None = None) -> None:
        self.runners = runners
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "llamita_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.in_flight = Gauge("llamita_http_requests_in_flight", "HTTP requests being served", registry=r)
        self.duration = Histogram(
            "llamita_http_request_duration_seconds",
            "Time from request to the end of the response (streams included)",
            ["route"],
            registry=r,
        )
        self._folded = {
            field: Counter(name, text, ["model"], registry=r) for field, (name, text) in _FOLDED.items()
        }
        self.ttft = Histogram(
            "llamita_time_to_first_token_seconds",
            "From submission to the engine to the first token",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.inter_token = Histogram(
            "llamita_inter_token_seconds",
            "Time between consecutive tokens of one generation",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        r.register(_ModelState(runners))
        self.acceptance = Acceptance(r)
        if usage is not None:
            r.register(_KeyUsage(usage))
        self._seen: weakref.WeakKeyDictionary[Engine, dict[str, int]] = weakref.WeakKeyDictionary()

    def observe(self, model: str) -> GenerationObserver:
        return GenerationObserver(self, model)

    def sync(self, model: str, engine: Engine) -> None:
        """Add what ``engine`` counted since the last sync to the Prometheus counters."""
        stats = engine.stats()
        now = {field: int(getattr(stats, field)) for field in _FOLDED}
        before = self._seen.get(engine, {})
        self._seen[engine] = now
        for field, counter in self._folded.items():
            delta = now[field] - before.get(field, 0)
            if delta > 0:
                counter.labels(model).inc(delta)

    def render(self) -> bytes:
        for runner in list(self.runners.loaded.values()):
            self.sync(runner.model.short_name, runner.engine)
        return generate_latest(self.registry)


class GenerationObserver:
    """Timing of one generation; the inference path calls :meth:`event` for each engine event."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.metrics = metrics
        self.model = model
        self.started = time.monotonic()
        self.last: float | None = None

    def token(self) -> None:
        now = time.monotonic()
        if self.last is None:
            self.metrics.ttft.labels(self.model).observe(now - self.started)
        else:
            self.metrics.inter_token.labels(self.model).observe(now - self.last)
        self.last = now

    def finish(self, engine: Engine) -> None:
        self.metrics.sync(self.model, engine)


class _ModelState(Collector):
    """Gauges read from the loaded engines at scrape time (the engine thread only appends)."""

    def __init__(self, runners: Runners) -> None:
        self.runners = runners

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        loaded = GaugeMetricFamily("llamita_models_loaded", "Models loaded in memory")
        running = GaugeMetricFamily(
            "llamita_requests_running", "Requests holding a sequence", labels=["model"]
        )
        queued = GaugeMetricFamily(
            "llamita_requests_queued", "Requests waiting for a sequence", labels=["model"]
        )
        kv = GaugeMetricFamily(
            "llamita_kv_cache_tokens", "Tokens held in the KV cache's sequences", labels=["model"]
        )
        capacity = GaugeMetricFamily(
            "llamita_kv_cache_capacity_tokens", "KV cache size (n_ctx, all sequences)", labels=["model"]
        )
        healthy = GaugeMetricFamily(
            "llamita_model_healthy",
            "1 while the model's engine runs, 0 once it has stopped (reloaded on the next request)",
            labels=["model"],
        )
        runners = list(self.runners.loaded.values())
        loaded.add_metric([], len(runners))
        for runner in runners:
            name, engine = [runner.model.short_name], runner.engine
            stats = engine.stats()
            running.add_metric(name, stats.running)
            queued.add_metric(name, stats.queued)
            kv.add_metric(name, stats.kv_tokens)
            capacity.add_metric(name, stats.n_ctx)
            healthy.add_metric(name, 1 if getattr(engine, "healthy", True) else 0)
        yield from (loaded, running, queued, kv, capacity, healthy)


# Usage counter → (metric name without ``_total``, help, the Counts field, scale).
_KEY_COUNTERS = (
    ("llamita_key_requests", "Inference requests per API key name and model", "requests", 1),
    ("llamita_key_prompt_tokens", "Prompt tokens evaluated per API key name and model", "prompt_tokens", 1),
    (
        "llamita_key_cached_tokens",
        "Prompt tokens served from the KV cache per key and model",
        "cached_tokens",
        1,
    ),
    ("llamita_key_generated_tokens", "Tokens generated per API key name and model", "generated_tokens", 1),
    ("llamita_key_engine_seconds", "Engine time (prompt evaluation + generation) per key", "engine_ns", 1e-9),
)


class _KeyUsage(Collector):
    """Usage per key name and model since start, read from the recorder at scrape time."""

    def __init__(self, usage: Usage) -> None:
        self.usage = usage

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        families = [
            (CounterMetricFamily(name, text, labels=["key", "model"]), field, scale)
            for name, text, field, scale in _KEY_COUNTERS
        ]
        for key, model, counts in self.usage.label_totals():
            for family, field, scale in families:
                family.add_metric([key, model], getattr(counts, field) * scale)
        yield from (family for family, _, _ in families)


# ---- completion acceptance (reported by the language server) ------------------------------------

# CompletionEvent field -> (counter name, help); each is labelled by model and language.
ACCEPTANCE_FIELDS = {
    "shown": ("llamita_completions_shown", "Inline completions the editor showed"),
    "accepted": ("llamita_completions_accepted", "Inline completions accepted whole"),
    "partially_accepted": ("llamita_completions_partially_accepted", "Inline completions accepted in part"),
    "accepted_chars": ("llamita_completions_accepted_chars", "Characters of completions accepted"),
}
# The label pairs are the clients' own strings: past this many pairs, new ones count as OTHER,
# so a client cannot grow the registry (and every scrape) without bound.
MAX_ACCEPTANCE_SERIES = 256
OTHER = "(other)"


@dataclass
class AcceptanceRow:
    """Totals for one (model, language) since the server started."""

    model: str
    language: str
    shown: int = 0
    accepted: int = 0
    partially_accepted: int = 0
    accepted_chars: int = 0

    @property
    def rate(self) -> float | None:
        """accepted / shown (None before anything was shown)."""
        return self.accepted / self.shown if self.shown else None


class Acceptance:
    """Inline-completion acceptance counters, per model and language (no code text ever)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counters = {
            field: Counter(name, text, ["model", "language"], registry=registry)
            for field, (name, text) in ACCEPTANCE_FIELDS.items()
        }
        self._rows: dict[tuple[str, str], AcceptanceRow] = {}
        self._lock = threading.Lock()  # the status page reads from the thread pool

    def add(self, model: str, language: str, counts: dict[str, int]) -> None:
        """Add one report's counts (validated by the route: non-negative ints, bounded labels)."""
        with self._lock:
            key = (model, language)
            if key not in self._rows and len(self._rows) >= MAX_ACCEPTANCE_SERIES:
                key = (OTHER, OTHER)
            row = self._rows.setdefault(key, AcceptanceRow(*key))
            for field, counter in self._counters.items():
                n = counts.get(field, 0)
                setattr(row, field, getattr(row, field) + n)
                counter.labels(*key).inc(n)

    def rows(self) -> list[AcceptanceRow]:
        """A copy of every row, most shown first."""
        with self._lock:
            rows = [dataclasses.replace(row) for row in self._rows.values()]
        return sorted(rows, key=lambda row: (-row.shown, row.model, row.language))
