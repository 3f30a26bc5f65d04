"""``GET /api/usage`` and the ``/metrics`` key labels on a real server over smollm2:135m.

A mixed run (native generate and chat, streamed and not, ``/v1/chat/completions`` through the
``openai`` SDK, embeddings) must add up to exactly the tokens the responses reported; usage
survives a restart on the same models directory.  The mixed run names its owners with a
test-only middleware that sets ``auth.OWNER`` from a header (inside the auth layer, where the
keys file's names are set); ``test_named_keys_from_the_keys_file`` runs the same path with a real
keys file, names and roles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving import serve_app
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from llamita.server.api import auth, build_app
from llamita.server.runtime.usage import ANONYMOUS, FILENAME
from llamita.server.store.blobs import Store

pytestmark = pytest.mark.model

MODEL = "smollm2:135m"
OWNER_HEADER = b"x-test-owner"
SHORT = {"temperature": 0, "num_predict": 6}
COUNTS = ("requests", "prompt_tokens", "cached_tokens", "generated_tokens")


class OwnerFromHeader:
    """Test-only: the request's owner from ``X-Test-Owner``, as the keys layer will set it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == OWNER_HEADER:
                    scope[auth.OWNER] = value.decode()
        await self.app(scope, receive, send)


def owned_app(store: Store) -> Any:
    app = build_app(store, listen_host="127.0.0.1")
    app.user_middleware.append(Middleware(OwnerFromHeader))  # innermost: after auth and limits
    return app


@pytest.fixture
def url(seeded_store: Store) -> Iterator[str]:
    with serve_app(owned_app(seeded_store)) as base:
        yield base


def as_owner(owner: str) -> dict[str, str]:
    return {"X-Test-Owner": owner}


class Expected:
    """What the responses reported, per key."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict[str, int]] = {}

    def add(self, key: str, prompt: int, generated: int, cached: int = 0) -> None:
        entry = self.by_key.setdefault(key, dict.fromkeys(COUNTS, 0))
        entry["requests"] += 1
        entry["prompt_tokens"] += prompt
        entry["generated_tokens"] += generated
        entry["cached_tokens"] += cached

    def native(self, key: str, final: dict[str, Any]) -> None:
        self.add(
            key,
            final.get("prompt_eval_count", 0),
            final.get("eval_count", 0),
            final.get("prompt_cache_tokens", 0),
        )


def native_call(base: str, path: str, body: dict[str, Any], owner: str | None) -> dict[str, Any]:
    """The final object of a native call, streamed or not."""
    headers = as_owner(owner) if owner else {}
    if not body.get("stream", True):
        r = httpx.post(base + path, json=body, headers=headers, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()
    with httpx.stream("POST", base + path, json=body, headers=headers, timeout=120) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert lines[-1]["done"] is True
    return lines[-1]


def usage(base: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(base + "/api/usage", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def scrape(base: str) -> dict[tuple[str, str, str], float]:
    """``/metrics``'s per-key samples: (name, key, model) → value."""
    text = httpx.get(base + "/metrics").text
    return {
        (s.name, s.labels["key"], s.labels["model"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "key" in s.labels
    }


def summed(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    """Day rows of ``key`` (on the one model) summed: a run may cross midnight UTC."""
    mine = [r for r in rows if r["key"] == key]
    assert {r["model"] for r in mine} == {MODEL}
    return {name: sum(r[name] for r in mine) for name in COUNTS}


def test_a_mixed_run_adds_up_to_the_reported_tokens(url: str) -> None:
    expected = Expected()
    chat = [{"role": "user", "content": "Name a colour."}]
    for stream in (False, True):
        body = {"model": MODEL, "prompt": "Count: one, two,", "options": SHORT, "stream": stream}
        expected.native("native", native_call(url, "/api/generate", body, "native"))
        body = {"model": MODEL, "messages": chat, "options": SHORT, "stream": stream}
        expected.native("native", native_call(url, "/api/chat", body, "native"))
    embedded = httpx.post(
        url + "/api/embed", json={"model": MODEL, "input": ["a cat", "a dog sat"]}, headers=as_owner("native")
    ).json()
    expected.add("native", embedded["prompt_eval_count"], 0)
    # No key at all (an open server): the fixed name.
    body = {"model": MODEL, "prompt": "Hi", "options": SHORT, "stream": False}
    expected.native(ANONYMOUS, native_call(url, "/api/generate", body, None))

    with openai.OpenAI(
        base_url=url + "/v1", api_key="x", max_retries=0, timeout=120, default_headers=as_owner("sdk")
    ) as sdk:
        reply = sdk.chat.completions.create(model=MODEL, messages=chat, max_tokens=6, temperature=0)
        assert reply.usage is not None
        expected.add("sdk", reply.usage.prompt_tokens, reply.usage.completion_tokens)
        stream = sdk.chat.completions.create(
            model=MODEL,
            messages=chat,
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        last = [chunk for chunk in stream if chunk.usage is not None][-1]
        assert last.usage is not None
        expected.add("sdk", last.usage.prompt_tokens, last.usage.completion_tokens)
        vectors = sdk.embeddings.create(model=MODEL, input="a fish")
        expected.add("sdk", vectors.usage.prompt_tokens, 0)

    answer = usage(url)
    totals = {t["key"]: t for t in answer["totals"]}
    assert set(totals) == {"native", "sdk", ANONYMOUS}
    for key, want in expected.by_key.items():
        got = totals[key]
        assert got["model"] == MODEL
        counted = (
            COUNTS if key != "sdk" else ("requests", "prompt_tokens", "generated_tokens")
        )  # /v1: no cache
        assert {n: got[n] for n in counted} == {n: want[n] for n in counted}, key
        assert {n: v for n, v in summed(answer["days"], key).items() if n in counted} == {
            n: want[n] for n in counted
        }
        assert got["engine_seconds"] > 0
    assert expected.by_key["native"]["requests"] == 5 and expected.by_key["sdk"]["requests"] == 3

    only = usage(url, key="sdk", model=MODEL, days=1)
    assert {t["key"] for t in only["totals"]} == {"sdk"} and {d["key"] for d in only["days"]} <= {"sdk"}
    assert usage(url, model="other")["totals"] == []

    m = scrape(url)
    for key, want in expected.by_key.items():
        assert m["llamita_key_requests_total", key, MODEL] == want["requests"]
        assert m["llamita_key_prompt_tokens_total", key, MODEL] == want["prompt_tokens"]
        assert m["llamita_key_generated_tokens_total", key, MODEL] == want["generated_tokens"]
        assert m["llamita_key_engine_seconds_total", key, MODEL] == pytest.approx(
            totals[key]["engine_seconds"]
        )
        if key != "sdk":
            assert m["llamita_key_cached_tokens_total", key, MODEL] == want["cached_tokens"]


def test_a_request_refused_before_the_engine_is_not_counted(url: str) -> None:
    r = httpx.post(url + "/api/generate", json={"model": "nope", "prompt": "x"}, headers=as_owner("a"))
    assert r.status_code == 404
    assert usage(url)["totals"] == []


@pytest.mark.parametrize("days", ["0", "-1", "x", "1.5"])
def test_bad_days_is_a_clear_400(url: str, days: str) -> None:
    r = httpx.get(url + "/api/usage", params={"days": days})
    assert r.status_code == 400 and r.json() == {"error": "days must be a positive integer"}


def test_usage_survives_a_restart(seeded_store: Store) -> None:
    body = {"model": MODEL, "prompt": "Hello", "options": SHORT, "stream": False}
    with serve_app(owned_app(seeded_store)) as first:
        reported = native_call(first, "/api/generate", body, "alice")
        since = usage(first)["since"]
    assert (seeded_store.root / FILENAME).is_file()
    with serve_app(owned_app(seeded_store)) as second:
        answer = usage(second)
        assert answer["totals"] == [] and answer["since"] >= since  # totals: this process only
        days = summed(answer["days"], "alice")
        assert days["requests"] == 1
        assert days["prompt_tokens"] == reported.get("prompt_eval_count", 0)
        assert days["generated_tokens"] == reported.get("eval_count", 0)
        again = native_call(second, "/api/generate", body, "alice")
        days = summed(usage(second)["days"], "alice")
        assert days["requests"] == 2
        assert days["generated_tokens"] == reported.get("eval_count", 0) + again.get("eval_count", 0)


def test_named_keys_from_the_keys_file(
    seeded_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real keys file (``NAME KEY ROLE``): bob's usage under his name, read by the admin."""
    keys = tmp_path / "keys"
    keys.write_text("alice sk-alice-0123456789 admin\nbob sk-bob-0123456789 user\n")
    monkeypatch.setenv("LLAMITA_API_KEYS_FILE", str(keys))
    with serve_app(build_app(seeded_store, listen_host="127.0.0.1")) as base:
        bob = {"Authorization": "Bearer sk-bob-0123456789"}
        alice = {"Authorization": "Bearer sk-alice-0123456789"}
        body = {"model": MODEL, "prompt": "Hello", "options": SHORT, "stream": False}
        reported = httpx.post(base + "/api/generate", json=body, headers=bob, timeout=120).json()
        assert httpx.get(base + "/api/usage", headers=bob).status_code == 403
        answer = httpx.get(base + "/api/usage", headers=alice).json()
        (row,) = answer["totals"]
        assert (row["key"], row["model"], row["requests"]) == ("bob", MODEL, 1)
        assert row["generated_tokens"] == reported.get("eval_count", 0)
        metrics = httpx.get(base + "/metrics", headers=alice).text
        assert f'llamita_key_requests_total{{key="bob",model="{MODEL}"}} 1.0' in metrics
