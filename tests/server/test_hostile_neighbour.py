"""Hostile neighbours: bad requests next to streaming bystanders never harm them (issue 11).

Each case starts two greedy bystanders (see ``tests/bystanders.py``), waits until both
stream, then sends one family of bad requests at once, while ``/api/version`` is polled on
its own connection.  Pass: each bad request gets a 4xx with an error message (or, where a
case says so, a normal answer: absurd-but-clampable options, a lone surrogate that Go would
turn into U+FFFD, a long chat that is truncated), the bystanders finish with their solo
output, every poll is answered, the process is still alive, the engine ends idle and the
store is exactly as it was.

The server is a real ``llamita serve`` subprocess (one per module), not the in-process
fixture: some of these inputs abort the process (``GGML_ASSERT`` on a small ``num_batch``),
and a test must report that as a failure rather than take pytest down with it.  After a
failing case the server is restarted, so each case is judged on a healthy server.

The ``/api/version`` bound: the handler does no work, so a server that keeps blocking work
off its event loop answers in milliseconds however loaded the box is (the slowest answer is
printed).  ``LATENCY_BOUND_S`` is hundreds of times that and below the freezes the issue
measured (5 s for the range template, 14 s for the 300-turn chat), so it fails only when one
request holds the loop, not when the machine is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from bystanders import (
    MODEL,
    NORMAL_DONE,
    Bystanders,
    VersionPoller,
    client,
    default_bystanders,
    error_message,
)
from prometheus_client.parser import text_string_to_metric_families
from serving import free_port, serve_cli

from conftest import _link_tree
from llamita.server.runtime.usage import FILENAME as USAGE_FILE

pytestmark = pytest.mark.model

LATENCY_BOUND_S = 3.0
# 4 sequences of 2048 tokens: room for the long-prompt case, a small KV on a shared box.
SERVER_ENV = {"OLLAMA_CONTEXT_LENGTH": "2048", "OLLAMA_NUM_PARALLEL": "4", "OLLAMA_KEEP_ALIVE": "-1"}
IDLE_GUARD_S = 120.0  # only a hang guard for "the engine ends idle"
N_VOCAB = 49152  # SmolLM2's vocabulary: the first invalid token id
NESTED = b"[" * 1000 + b"]" * 1000
HUGE_INT = b"1" + b"0" * 4300  # 4301 digits: over Python's int-parsing limit
INT_4300 = b"9" * 4300  # 4300 digits: parses, and is absurd as any option
SAY_HI = {"model": MODEL, "prompt": "Say hi.", "options": {"temperature": 0, "num_predict": 4}}
HI = [{"role": "user", "content": "hi"}]
HI_JSON = json.dumps(HI)


@dataclass(frozen=True)
class Bad:
    """One hostile request.  ``accept``: ``4xx``, ``ok`` (a normal answer) or ``4xx|ok``."""

    route: str
    body: dict[str, Any] | bytes
    accept: str = "4xx"


@dataclass(frozen=True)
class Family:
    """Bad requests sent together next to one bystander run; ``custom`` replaces them."""

    name: str
    requests: tuple[Bad, ...] = ()
    custom: Callable[[httpx.AsyncClient, str], Awaitable[list[str]]] | None = None


def _raw(route_body: str) -> bytes:
    return route_body.encode()


def _options(**options: Any) -> dict[str, Any]:
    return {**SAY_HI, "options": {**SAY_HI["options"], **options}}


def _absurd(name: str, value: Any) -> Family:
    return Family(f"{name}={value}", (Bad("/api/generate", _options(**{name: value}), "4xx|ok"),))


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": HI, "options": {"num_predict": 4}, **fields}


def _v1(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": HI, "max_tokens": 4, **fields}


def _with(prefix: str, value: bytes) -> bytes:
    """A JSON object whose last field is ``value`` (raw bytes, e.g. NaN or deep nesting)."""
    return prefix.encode() + value + b"}"


LONG_CHAT = [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"Tell me one more fact about the number {i}."}
    for i in range(300)
]
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


def _tool_message(calls: Any) -> list[dict[str, Any]]:
    return [*HI, {"role": "assistant", "content": "", "tool_calls": calls}, {"role": "user", "content": "ok"}]


FAMILIES = [
    Family("context=[99999999]", (Bad("/api/generate", {**SAY_HI, "context": [99999999]}),)),
    Family("context=[n_vocab]", (Bad("/api/generate", {**SAY_HI, "context": [1, N_VOCAB]}),)),
    Family("context=[-1]", (Bad("/api/generate", {**SAY_HI, "context": [-1]}),)),
    Family(
        "context-wrong-type",
        tuple(
            Bad("/api/generate", {**SAY_HI, "context": value})
            for value in ("abc", ["x"], [1.5], {"a": 1}, [[1]], [True])
        ),
    ),
    Family(
        "template-renders-empty", (Bad("/api/generate", {**SAY_HI, "template": "{{ if false }}a{{ end }}"}),)
    ),
    _absurd("num_batch", 1),
    _absurd("num_batch", 2),
    _absurd("num_batch", -1),
    _absurd("num_batch", 1.5),
    _absurd("num_batch", 2_000_000),
    _absurd("num_ctx", -5),
    _absurd("num_ctx", 10**12),
    _absurd("num_predict", 10**12),
    Family(
        "num_predict=4300-digits",
        (
            Bad(
                "/api/generate",
                _with(f'{{"model":"{MODEL}","prompt":"Say hi.","options":{{"num_predict":', INT_4300 + b"}"),
                "4xx|ok",
            ),
        ),
    ),
    Family("disconnect-mid-prefill", custom=lambda http, url: _disconnect_mid_prefill(http, url)),
    Family(
        "json-nested-1000",
        (
            Bad("/api/generate", _with(f'{{"model":"{MODEL}","prompt":"hi","options":', NESTED)),
            Bad("/api/chat", _with(f'{{"model":"{MODEL}","messages":{HI_JSON},"format":', NESTED)),
            Bad("/v1/chat/completions", _with(f'{{"model":"{MODEL}","messages":{HI_JSON},"stop":', NESTED)),
            Bad("/api/embed", _with(f'{{"model":"{MODEL}","input":', NESTED)),
            Bad("/api/show", NESTED),
            Bad("/api/create", _with('{"model":"nested:1","from":', NESTED)),
        ),
    ),
    Family(
        "json-4301-digit-int",
        (
            Bad(
                "/api/generate",
                _with(f'{{"model":"{MODEL}","prompt":"hi","options":{{"seed":', HUGE_INT + b"}"),
            ),
            Bad("/api/chat", _with(f'{{"model":"{MODEL}","messages":{HI_JSON},"keep_alive":', HUGE_INT)),
            Bad(
                "/v1/chat/completions",
                _with(f'{{"model":"{MODEL}","messages":{HI_JSON},"max_tokens":', HUGE_INT),
            ),
            Bad("/api/embed", _with(f'{{"model":"{MODEL}","input":"x","dimensions":', HUGE_INT)),
            Bad("/api/show", _with(f'{{"model":"{MODEL}","verbose":', HUGE_INT)),
        ),
    ),
    Family(
        "lone-surrogate",
        (
            Bad("/api/generate", {**SAY_HI, "prompt": "hi \ud800"}, "4xx|ok"),
            Bad("/api/generate", {**SAY_HI, "system": "\ud800"}, "4xx|ok"),
            Bad("/api/chat", _chat(messages=[{"role": "user", "content": "\ud800"}]), "4xx|ok"),
            Bad("/v1/chat/completions", _v1(messages=[{"role": "user", "content": "\ud800"}]), "4xx|ok"),
            Bad("/api/embed", {"model": MODEL, "input": "\ud800"}, "4xx|ok"),
        ),
    ),
    Family(
        "format-enum-empty",
        (
            Bad("/api/generate", {**SAY_HI, "format": {"enum": []}}),
            Bad("/api/chat", _chat(format={"enum": []})),
            Bad(
                "/v1/chat/completions",
                _v1(
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": "x", "schema": {"enum": []}},
                    }
                ),
            ),
        ),
    ),
    Family(
        "tools-native",
        (
            Bad("/api/chat", _chat(tools="nope")),
            Bad("/api/chat", _chat(tools=[5])),
            Bad("/api/chat", _chat(tools=[{"type": "function", "function": 5}])),
            Bad("/api/chat", _chat(tools=[{"type": "function", "function": {"name": 5}}])),
            Bad("/api/chat", _chat(tools=[WEATHER], messages=_tool_message("x"))),
            Bad("/api/chat", _chat(messages=_tool_message([{"function": {"name": 5, "arguments": {}}}]))),
            Bad(
                "/api/chat", _chat(messages=_tool_message([{"function": {"name": "f", "arguments": "[1]"}}]))
            ),
        ),
    ),
    Family(
        "tools-v1",
        (
            Bad("/v1/chat/completions", _v1(tools=[{"type": "function", "function": {"name": 1}}])),
            Bad("/v1/chat/completions", _v1(tools={"a": 1})),
            Bad(
                "/v1/chat/completions",
                _v1(
                    messages=_tool_message(
                        [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{not json"},
                            }
                        ]
                    )
                ),
            ),
            Bad("/v1/chat/completions", _v1(messages=_tool_message([{"id": 5, "function": 5}]))),
        ),
    ),
    Family(
        "embeddings-non-string-prompt",
        tuple(
            Bad("/api/embeddings", {"model": MODEL, "prompt": value}) for value in (5, ["a"], {"a": 1}, True)
        ),
    ),
    Family(
        "create-bad-fields",
        (
            Bad("/api/create", {"model": "bad:from", "from": 5, "stream": False}),
            Bad("/api/create", {"model": 5, "from": MODEL, "stream": False}),
            Bad("/api/create", {"model": "bad:system", "from": MODEL, "system": 5, "stream": False}),
            Bad("/api/create", {"model": "bad:template", "from": MODEL, "template": ["x"], "stream": False}),
            Bad("/api/create", {"model": "bad:messages", "from": MODEL, "messages": "x", "stream": False}),
            Bad("/api/create", {"model": "bad:params", "from": MODEL, "parameters": "x", "stream": False}),
            Bad(
                "/api/create",
                _raw(
                    f'{{"model":"bad:nan","from":"{MODEL}","stream":false,"parameters":{{"temperature":NaN}}}}'
                ),
            ),
            Bad(
                "/api/create",
                _raw(
                    f'{{"model":"bad:inf","from":"{MODEL}","stream":false,"parameters":{{"num_ctx":Infinity}}}}'
                ),
            ),
            Bad(
                "/api/create",
                {"model": "bad:topk", "from": MODEL, "parameters": {"top_k": "abc"}, "stream": False},
            ),
            Bad(
                "/api/create",
                {"model": "bad:stop", "from": MODEL, "parameters": {"stop": 5}, "stream": False},
            ),
            Bad(
                "/api/create",
                {"model": "bad:name", "from": MODEL, "parameters": {"no_such": 1}, "stream": False},
            ),
        ),
    ),
    Family(
        "copy-non-string-names",
        (
            Bad("/api/copy", {"source": 5, "destination": "copy:a"}),
            Bad("/api/copy", {"source": MODEL, "destination": ["copy:b"]}),
            Bad("/api/copy", {"source": MODEL, "destination": {"a": 1}}),
            Bad("/api/copy", {"source": [MODEL], "destination": "copy:c"}),
        ),
    ),
    Family(
        "show-non-string-system",
        (
            Bad("/api/show", _raw(f'{{"model":"{MODEL}","system":Infinity}}')),
            Bad("/api/show", {"model": MODEL, "system": 5}),
            Bad("/api/show", {"model": MODEL, "system": ["x"]}),
        ),
    ),
    Family(
        "chat-300-turns-num_ctx-512",
        (Bad("/api/chat", _chat(messages=LONG_CHAT, options={"num_ctx": 512, "num_predict": 4}), "ok"),),
    ),
    Family(
        "template-range-10000000",
        (Bad("/api/generate", {**SAY_HI, "template": "{{ range 10000000 }}x{{ end }}"}, "4xx|ok"),),
    ),
]


# ---- the server and the checks -----------------------------------------------------------
class ServerProcess:
    """``llamita serve`` over a private copy of the seeded store; restartable."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root, self.log = root, log
        self.url = ""
        self._stack: contextlib.ExitStack | None = None
        self._proc: Any = None

    def start(self) -> None:
        port = free_port()
        self._stack = contextlib.ExitStack()
        env = {**SERVER_ENV, "OLLAMA_MODELS": str(self.root)}
        self._proc = self._stack.enter_context(serve_cli(env, port, self.log))
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def exit_code(self) -> int | None:
        return self._proc.poll()


@dataclass
class Neighbourhood:
    server: ServerProcess
    bystanders: Bystanders = field(default_factory=lambda: Bystanders(default_bystanders(num_predict=16)))


@pytest.fixture(scope="module")
def neighbourhood(tmp_path_factory: pytest.TempPathFactory, seeded_models: Path) -> Iterator[Neighbourhood]:
    base = tmp_path_factory.mktemp("hostile")
    _link_tree(seeded_models, base / "models")
    server = ServerProcess(base / "models", base / "serve.log")
    server.start()
    hood = Neighbourhood(server)
    try:
        yield hood
    finally:
        server.stop()


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file of a store: size, and a hash for manifests (blob names are their hashes).

    The usage database beside the models counts every request by design: it is not the store."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith(USAGE_FILE):
            digest = "" if path.parent.name == "blobs" else hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(root))] = (path.stat().st_size, digest)
    return out


async def send(http: httpx.AsyncClient, url: str, bad: Bad) -> str | None:
    """Send one bad request; None when the answer is acceptable, else what was wrong."""
    body = bad.body
    if isinstance(body, dict) and bad.route in ("/api/generate", "/api/chat"):
        body = {"stream": False, **body}
    # json.dumps escapes non-ASCII (a lone surrogate travels as the six characters \ud800).
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = await http.post(url + bad.route, headers={"content-type": "application/json"}, content=content)
    message = error_message(r)
    if "4xx" in bad.accept and 400 <= r.status_code < 500 and message:
        return None
    if "ok" in bad.accept and r.status_code == 200 and _normal_answer(bad.route, r):
        return None
    return f"{bad.route} {r.status_code} {r.text[:160]!r} (wanted {bad.accept})"


def _normal_answer(route: str, r: httpx.Response) -> bool:
    try:
        obj = r.json()
    except ValueError:
        return False
    if route in ("/api/generate", "/api/chat"):
        return obj.get("done") is True and obj.get("done_reason") in NORMAL_DONE
    if route == "/v1/chat/completions":
        return obj["choices"][0]["finish_reason"] in NORMAL_DONE
    return "error" not in obj


async def engine_state(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """Sums over models of the engine gauges in ``/metrics``."""
    r = await http.get(url + "/metrics")
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


async def wait_idle(http: httpx.AsyncClient, url: str) -> str | None:
    """Wait (hang guard only) until no request runs or waits in any engine."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + IDLE_GUARD_S
    while True:
        state = await engine_state(http, url)
        busy = state.get("llamita_requests_running", 0) + state.get("llamita_requests_queued", 0)
        if busy == 0:
            return None
        if loop.time() > deadline:
            return f"{busy:.0f} request(s) still in the engine {IDLE_GUARD_S:.0f} s after the case"
        await asyncio.sleep(0.05)  # polling an event; the guard above bounds it


async def _disconnect_mid_prefill(http: httpx.AsyncClient, url: str) -> list[str]:
    """A long prompt whose client hangs up once its prefill is under way (before any byte)."""
    before = (await engine_state(http, url)).get("llamita_kv_cache_tokens", 0)
    body = {
        "model": MODEL,
        "prompt": "Summarise: " + "the quick brown fox jumps over the lazy dog " * 180,
        "options": {"num_predict": 4},
    }
    request = asyncio.ensure_future(http.post(url + "/api/generate", json=body))
    # The bystanders add at most 2 x 16 tokens; far more cells in use means our prefill runs.
    while not request.done():
        if (await engine_state(http, url)).get("llamita_kv_cache_tokens", 0) > before + 256:
            break
        await asyncio.sleep(0.01)  # polling an event; ends when the request does
    if request.done():
        print("disconnect-mid-prefill: the prefill finished before it was seen; hung up after it")
    request.cancel()
    with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
        await request
    return []


async def _scenario(hood: Neighbourhood, family: Family) -> list[str]:
    url = hood.server.url
    started = time.monotonic()
    async with client() as http:
        if not hood.bystanders.solo:
            await hood.bystanders.measure_solo(http, url)
        before = snapshot(hood.server.root)
        async with VersionPoller(url) as poller:
            if family.custom is not None:
                neighbours = [lambda: family.custom(http, url)]
            else:
                neighbours = [lambda b=b: send(http, url, b) for b in family.requests]
            replies, outcomes = await hood.bystanders.run(http, url, *neighbours)
            idle = await wait_idle(http, url)
    problems = hood.bystanders.check(replies)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            problems.append(f"bad request raised {type(outcome).__name__}: {outcome}")
        elif isinstance(outcome, list):
            problems += outcome
        elif outcome is not None:
            problems.append(outcome)
    if idle:
        problems.append(idle)
    print(
        f"{family.name}: {time.monotonic() - started:.1f} s, {len(poller.latencies)} /api/version polls,"
        f" slowest {poller.max_latency:.3f} s"
    )
    problems += [f"/api/version failed: {f}" for f in poller.failures[:3]]
    if poller.max_latency > LATENCY_BOUND_S:
        problems.append(f"/api/version took {poller.max_latency:.1f} s (the event loop was blocked)")
    if snapshot(hood.server.root) != before:
        problems.append("the store changed")
    return problems


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_bad_neighbour_harms_no_one(neighbourhood: Neighbourhood, family: Family) -> None:
    server = neighbourhood.server
    if server.exit_code is not None:  # a previous case killed it (already reported there)
        server.restart()
    try:
        problems = asyncio.run(_scenario(neighbourhood, family))
    except Exception as e:
        problems = [f"{type(e).__name__}: {e}"]
    if server.exit_code is not None:
        problems.append(f"the server died (exit code {server.exit_code})")
    if problems:
        server.restart()  # the next case starts on a healthy server
    assert not problems, "\n".join(problems)
