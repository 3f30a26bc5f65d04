"""``/metrics``: Prometheus text that parses, counts requests, and moves with generation."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving import serve_app

from llamita.server.api import build_app
from llamita.server.runtime.metrics import CONTENT_TYPE
from llamita.server.store.blobs import Store

MODEL = "smollm2:135m"


class Scrape:
    """One parsed scrape: ``scrape["name", {"label": "value"}]`` → sample value (0 if absent)."""

    def __init__(self, url: str) -> None:
        r = httpx.get(url + "/metrics")
        assert r.status_code == 200 and r.headers["content-type"] == CONTENT_TYPE
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text)
            for s in family.samples
        }

    def __getitem__(self, key: tuple[str, dict[str, str]]) -> float:
        name, labels = key
        return self.samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def plain(store: Store) -> Iterator[str]:
    with serve_app(build_app(store, listen_host="127.0.0.1")) as url:
        yield url


def test_requests_are_counted_by_route_template_and_status(plain: str) -> None:
    httpx.get(plain + "/api/tags")
    httpx.get(plain + "/api/tags")
    httpx.post(plain + "/api/show", json={"model": "nope"})
    httpx.head(plain + "/api/blobs/sha256:" + "a" * 64)
    httpx.get(plain + "/no/such/path")
    httpx.get(plain + "/api/show")  # wrong method
    m = Scrape(plain)
    assert m["llamita_http_requests_total", {"method": "GET", "route": "/api/tags", "status": "200"}] == 2
    assert m["llamita_http_requests_total", {"method": "POST", "route": "/api/show", "status": "404"}] == 1
    assert (
        m["llamita_http_requests_total", {"method": "HEAD", "route": "/api/blobs/{digest}", "status": "404"}]
        == 1
    )
    assert m["llamita_http_requests_total", {"method": "GET", "route": "unmatched", "status": "404"}] == 1
    assert m["llamita_http_requests_total", {"method": "GET", "route": "/api/show", "status": "405"}] == 1
    assert m["llamita_http_requests_in_flight", {}] == 1  # this scrape
    assert m["llamita_http_request_duration_seconds_count", {"route": "/api/tags"}] == 2
    assert m["llamita_models_loaded", {}] == 0


def test_refusals_are_counted_against_their_route(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMITA_API_KEYS", "k")
    with serve_app(build_app(store, listen_host="127.0.0.1")) as url:
        assert httpx.post(url + "/api/generate", json={}).status_code == 401
        r = httpx.get(url + "/metrics", headers={"Authorization": "Bearer k"})
        families = {f.name: f for f in text_string_to_metric_families(r.text)}
        samples = {frozenset(s.labels.items()): s.value for s in families["llamita_http_requests"].samples}
        assert samples[frozenset({"method": "POST", "route": "/api/generate", "status": "401"}.items())] == 1


def test_each_app_has_its_own_registry(store: Store) -> None:
    first, second = build_app(store), build_app(store)
    assert first.state.metrics.registry is not second.state.metrics.registry


@pytest.mark.model
def test_metrics_move_with_generation(server) -> None:
    before = Scrape(server.url)
    body = {
        "model": MODEL,
        "prompt": "Count: one, two,",
        "stream": False,
        "options": {"num_predict": 6, "temperature": 0},
    }
    first = httpx.post(server.url + "/api/generate", json=body, timeout=120).json()
    labels = {"model": MODEL}
    m = Scrape(server.url)
    assert before["llamita_tokens_generated_total", labels] == 0
    assert m["llamita_tokens_generated_total", labels] == first["eval_count"]
    assert m["llamita_prompt_tokens_evaluated_total", labels] == first["prompt_eval_count"]
    assert m["llamita_time_to_first_token_seconds_count", labels] == 1
    assert m["llamita_inter_token_seconds_count", labels] == first["eval_count"] - 1
    assert m["llamita_models_loaded", {}] == 1
    assert 0 < m["llamita_kv_cache_tokens", labels] <= m["llamita_kv_cache_capacity_tokens", labels]
    assert m["llamita_requests_running", labels] == 0 and m["llamita_requests_queued", labels] == 0
    route = {"method": "POST", "route": "/api/generate", "status": "200"}
    assert m["llamita_http_requests_total", route] == 1

    httpx.post(server.url + "/api/generate", json=body, timeout=120)  # same prompt: served from the KV cache
    m = Scrape(server.url)
    assert m["llamita_prompt_tokens_cached_total", labels] >= first["prompt_eval_count"] - 1
    assert m["llamita_time_to_first_token_seconds_count", labels] == 2

    # A client that goes away mid-stream is counted as a cancellation.
    long = {**body, "stream": True, "options": {"num_predict": 400}}
    with httpx.stream("POST", server.url + "/api/generate", json=long, timeout=120) as r:
        next(r.iter_lines())
    deadline = time.monotonic() + 10
    while Scrape(server.url)["llamita_requests_cancelled_total", labels] < 1:
        assert time.monotonic() < deadline, "the cancelled stream was not counted"
        time.sleep(0.05)
