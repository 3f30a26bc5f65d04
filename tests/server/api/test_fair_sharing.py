"""Fair sharing on a real server (issue 16): one key's burst cannot starve another key's request.

The server runs SmolLM2 with one running place (``OLLAMA_NUM_PARALLEL=1``).  Nothing depends
on timing: the long requests cannot end by themselves (a JSON schema grammar forbids the end
of the answer for thousands of tokens; the test closes them), every step waits for the
engine's own counts (``Engine.stats``: running and queued), and the order is read off what
the engine has admitted when the other key's request sends its first token.

The owner is the API key's name: the server reads a real keys file (``NAME KEY ROLE`` lines)
and each caller sends its own key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import serve_app

from llamita.server.api import build_app
from llamita.server.engine import EngineStats
from llamita.server.store.blobs import Store

pytestmark = pytest.mark.model

MODEL = "smollm2:135m"
KEYS = {"alice": "key-of-alice-0123456789", "bob": "key-of-bob-0123456789"}
ENDLESS = {"type": "array", "items": {"type": "integer"}, "minItems": 3000}
BURST = 4  # key A's requests waiting behind its first one
HANG_GUARD_S = 300.0  # only stops a broken test; every wait is for an engine count


def as_key(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


@pytest.fixture
def shared(seeded_store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    keys_file = tmp_path / "keys"
    keys_file.write_text("".join(f"{name} {key} user\n" for name, key in KEYS.items()))
    monkeypatch.setenv("LLAMITA_API_KEYS_FILE", str(keys_file))
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "1")
    monkeypatch.setenv("OLLAMA_CONTEXT_LENGTH", "2048")
    monkeypatch.setenv("LLAMITA_MAX_QUEUE_PER_KEY", str(BURST))
    app = build_app(seeded_store, listen_host="127.0.0.1")
    with serve_app(app) as url:
        yield url, app


def stats(app: Any) -> EngineStats:
    runners = list(app.state.runners.loaded.values())
    return runners[0].engine.stats() if runners else EngineStats()


async def until(app: Any, check: Any, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not check(stats(app)):
        assert time.monotonic() < deadline, f"never reached: {what} ({stats(app)})"
        await asyncio.sleep(0.01)


def chat(endless: bool, tag: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"List numbers ({tag})."}],
        "options": {"temperature": 0, "num_predict": 3000 if endless else 4},
    }
    return {**body, "format": ENDLESS} if endless else body


async def run(client: httpx.AsyncClient, owner: str, body: dict[str, Any], first: asyncio.Event) -> int:
    """Stream ``body`` as ``owner``; ``first`` is set at the first chunk.  The status code."""
    headers = as_key(owner)
    async with client.stream("POST", "/api/chat", json=body, headers=headers) as r:
        async for line in r.aiter_lines():
            if line:
                first.set()
        return r.status_code


def test_another_keys_request_is_admitted_at_the_next_free_place(shared) -> None:
    url, app = shared

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=HANG_GUARD_S) as client:
            started = {tag: asyncio.Event() for tag in ("a0", *(f"a{i}" for i in range(1, BURST + 1)), "b")}
            a0 = asyncio.create_task(run(client, "alice", chat(True, "a0"), started["a0"]))
            await started["a0"].wait()  # alice holds the one running place
            burst = [
                asyncio.create_task(run(client, "alice", chat(False, f"a{i}"), started[f"a{i}"]))
                for i in range(1, BURST + 1)
            ]
            await until(app, lambda s: s.queued == BURST, "alice's burst waiting")
            b = asyncio.create_task(run(client, "bob", chat(True, "b"), started["b"]))
            await until(app, lambda s: s.queued == BURST + 1, "bob's request waiting")
            a0.cancel()  # the place frees: bob's request is next, though alice's are older
            with contextlib.suppress(asyncio.CancelledError):
                await a0
            await started["b"].wait()
            now = stats(app)
            assert now.running == 1 and now.queued == BURST, now  # bob runs, alice's all wait
            assert not any(started[f"a{i}"].is_set() for i in range(1, BURST + 1))
            b.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await b
            assert await asyncio.gather(*burst) == [200] * BURST  # then alice's, all served

    asyncio.run(scenario())


def test_a_key_with_its_cap_of_requests_waiting_gets_a_429_with_retry_after(shared) -> None:
    url, app = shared

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=HANG_GUARD_S) as client:
            first = asyncio.Event()
            a0 = asyncio.create_task(run(client, "alice", chat(True, "a0"), first))
            await first.wait()
            waiting = [
                asyncio.create_task(run(client, "alice", chat(False, f"a{i}"), asyncio.Event()))
                for i in range(BURST)
            ]
            await until(app, lambda s: s.queued == BURST, "alice's cap of requests waiting")
            headers = as_key("alice")
            native = await client.post("/api/chat", json=chat(False, "over"), headers=headers)
            assert native.status_code == 429 and native.headers["retry-after"] == "1"
            assert native.json() == {"error": f"too many queued requests for this API key (limit {BURST})"}
            body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
            v1 = await client.post("/v1/chat/completions", json=body, headers=headers)
            assert v1.status_code == 429 and v1.headers["retry-after"] == "1"
            assert "limit 4" in v1.json()["error"]["message"]  # OpenAI's error shape
            # Bob is not alice: his request waits its turn and is served.
            bob = asyncio.create_task(run(client, "bob", chat(False, "b"), asyncio.Event()))
            await until(app, lambda s: s.queued == BURST + 1, "bob's request waiting")
            a0.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await a0
            assert await asyncio.gather(bob, *waiting) == [200] * (BURST + 1)

    asyncio.run(scenario())
