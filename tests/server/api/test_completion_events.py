"""``POST /api/llamita/completion-events``: the language server's acceptance counters reach
``/metrics`` (per model and language), bad reports are a 400 that counts nothing, and the
label set stays bounded whatever clients send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from llamita.server.api import build_app
from llamita.server.api.completion_events import MAX_COUNT, PATH
from llamita.server.runtime.metrics import MAX_ACCEPTANCE_SERIES, OTHER, Acceptance
from llamita.server.store.blobs import Store

KEY = "events-key-0123"
NAMES = {
    "shown": "llamita_completions_shown_total",
    "accepted": "llamita_completions_accepted_total",
    "partially_accepted": "llamita_completions_partially_accepted_total",
    "accepted_chars": "llamita_completions_accepted_chars_total",
}


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(build_app(store, listen_host="127.0.0.1"), base_url="http://127.0.0.1") as c:
        yield c


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def counts(client: TestClient, model: str, language: str) -> dict[str, float]:
    samples = scrape(client)
    labels = frozenset({"model": model, "language": language}.items())
    return {field: samples.get((name, labels), 0.0) for field, name in NAMES.items()}


def test_reports_add_up_in_metrics(client: TestClient) -> None:
    report = {"model": "qwen2.5-coder:1.5b", "language": "python", "shown": 12, "accepted": 3}
    report |= {"partially_accepted": 1, "accepted_chars": 140}
    r = client.post(PATH, json=report)
    assert (r.status_code, r.content) == (204, b"")
    client.post(PATH, json={"model": "qwen2.5-coder:1.5b", "language": "Python", "shown": 8})  # case-folded
    client.post(PATH, json={"model": "qwen2.5-coder:1.5b", "language": "go", "shown": 1, "accepted": 1})
    python = counts(client, "qwen2.5-coder:1.5b", "python")
    assert python == {"shown": 20, "accepted": 3, "partially_accepted": 1, "accepted_chars": 140}
    assert counts(client, "qwen2.5-coder:1.5b", "go")["accepted"] == 1


def test_fields_the_server_does_not_know_are_ignored(client: TestClient) -> None:
    report = {"model": "m", "language": "rust", "shown": 1, "text": "fn main() {}", "rejected": 1}
    assert client.post(PATH, json=report).status_code == 204
    assert "fn main" not in client.get("/metrics").text


BAD: list[tuple[str, Any, str]] = [
    ("no-model", {"language": "python", "shown": 1}, "model is required"),
    ("blank-language", {"model": "m", "language": "  ", "shown": 1}, "language is required"),
    ("model-not-string", {"model": 7, "language": "python"}, "model is required"),
    ("negative", {"model": "m", "language": "python", "shown": -1}, "shown must be an integer"),
    ("float", {"model": "m", "language": "python", "accepted": 1.5}, "accepted must be an integer"),
    ("bool", {"model": "m", "language": "python", "accepted": True}, "accepted must be an integer"),
    ("string-count", {"model": "m", "language": "python", "shown": "3"}, "shown must be an integer"),
    ("huge", {"model": "m", "language": "python", "accepted_chars": MAX_COUNT + 1}, "accepted_chars must be"),
    ("long-model", {"model": "m" * 201, "language": "python"}, "model must be at most 200"),
    ("long-language", {"model": "m", "language": "x" * 65}, "language must be at most 64"),
    ("control-chars", {"model": "m\n", "language": "python"}, "control characters"),
    ("array", [1, 2], "cannot unmarshal array"),
]


@pytest.mark.parametrize(("body", "message"), [(b, m) for _, b, m in BAD], ids=[i for i, _, _ in BAD])
def test_bad_reports_are_a_400_and_count_nothing(client: TestClient, body: Any, message: str) -> None:
    r = client.post(PATH, json=body)
    assert r.status_code == 400 and message in r.json()["error"], r.text
    assert not any(name.startswith("llamita_completions_") for name, _ in scrape(client))


@pytest.mark.parametrize("raw", [b"", b"{not json"])
def test_a_broken_body_is_a_400(client: TestClient, raw: bytes) -> None:
    r = client.post(PATH, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()


def test_the_label_set_is_bounded() -> None:
    acceptance = Acceptance(CollectorRegistry())
    for i in range(MAX_ACCEPTANCE_SERIES + 10):
        acceptance.add("m", f"lang{i}", {"shown": 1})
    rows = acceptance.rows()
    assert len(rows) == MAX_ACCEPTANCE_SERIES + 1
    (other,) = [row for row in rows if row.language == OTHER]
    assert (other.model, other.shown) == (OTHER, 10)


def test_with_keys_a_key_is_needed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMITA_API_KEYS", KEY)
    report = {"model": "m", "language": "python", "shown": 1}
    with TestClient(build_app(store, listen_host="127.0.0.1"), base_url="http://127.0.0.1") as c:
        assert c.post(PATH, json=report).status_code == 401
        assert c.post(PATH, json=report, headers={"Authorization": f"Bearer {KEY}"}).status_code == 204


def test_a_user_key_may_post(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"bob {KEY} user\n")
    monkeypatch.setenv("LLAMITA_API_KEYS_FILE", str(keys))
    report = {"model": "m", "language": "python", "shown": 1}
    with TestClient(build_app(store, listen_host="127.0.0.1"), base_url="http://127.0.0.1") as c:
        assert c.post(PATH, json=report, headers={"Authorization": f"Bearer {KEY}"}).status_code == 204
