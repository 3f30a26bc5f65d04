"""The runtime service called directly (no HTTP): typed requests in, native chunks out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fakeengine import FakeEngines

from ggufgen import write_tiny_gguf
from llamita.server.engine import Priority
from llamita.server.model.create import import_gguf
from llamita.server.runtime.errors import Canceled, InvalidRequest, ModelMissing
from llamita.server.runtime.generate import Runtime
from llamita.server.runtime.kinds import INTERACTIVE_TOKENS, Generate
from llamita.server.runtime.metrics import Metrics
from llamita.server.runtime.requests import ChatRequest, EmbedRequest, GenerateRequest
from llamita.server.runtime.runners import Runners
from llamita.server.store.blobs import Store


@pytest.fixture
def engines() -> FakeEngines:
    return FakeEngines()


@pytest.fixture
def runtime(store: Store, tmp_path: Path, engines: FakeEngines) -> Runtime:
    import_gguf(store, "tiny", write_tiny_gguf(tmp_path / "tiny.gguf"))
    runners = Runners(engines)
    return Runtime(store, runners, Metrics(runners))


def collect(runtime: Runtime, events: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        try:
            return [chunk async for chunk in events]
        finally:
            await runtime.runners.close()

    return asyncio.run(run())


def test_generate(runtime: Runtime, engines: FakeEngines) -> None:
    chunks = collect(runtime, runtime.generate(GenerateRequest(model="tiny", prompt="x", raw=True), "s1"))
    assert [c["response"] for c in chunks] == ["Hello", " world", ""]
    assert chunks[-1]["done_reason"] == "stop" and chunks[-1]["eval_count"] == 2
    assert engines.requests[0].session == "s1"


@pytest.mark.parametrize(
    ("req", "header", "expected"),
    [
        (GenerateRequest(model="tiny", prompt="def f(", raw=True), None, Priority.INTERACTIVE),
        (GenerateRequest(model="tiny", prompt="tell me a story"), None, Priority.NORMAL),
        (GenerateRequest(model="tiny", prompt="def f(", raw=True), "batch", Priority.BATCH),
        (ChatRequest(model="tiny", messages=[{"role": "user", "content": "hi"}]), None, Priority.NORMAL),
        (
            ChatRequest(model="tiny", messages=[{"role": "user", "content": "hi"}]),
            "interactive",
            Priority.INTERACTIVE,
        ),
    ],
)
def test_the_priority_class_comes_from_the_header_or_the_requests_shape(
    runtime: Runtime, engines: FakeEngines, req: Any, header: str | None, expected: Priority
) -> None:
    run = runtime.generate if isinstance(req, GenerateRequest) else runtime.chat
    collect(runtime, run(req, None, header))
    assert engines.requests[0].priority == expected


def test_a_long_raw_prompt_is_not_a_keystroke() -> None:
    kind = Generate(GenerateRequest(model="tiny", prompt="x", raw=True))
    assert kind.priority(INTERACTIVE_TOKENS) == Priority.INTERACTIVE
    assert kind.priority(INTERACTIVE_TOKENS + 1) == Priority.NORMAL


def test_chat(runtime: Runtime) -> None:
    req = ChatRequest(model="tiny", messages=[{"role": "user", "content": "hi"}])
    chunks = collect(runtime, runtime.chat(req))
    assert "".join(c["message"]["content"] for c in chunks) == "Hello world" and chunks[-1]["done"]


def test_keep_alive_zero_without_a_prompt_unloads(runtime: Runtime, engines: FakeEngines) -> None:
    (chunk,) = collect(runtime, runtime.generate(GenerateRequest(model="tiny", keep_alive=0)))
    assert chunk["done_reason"] == "unload" and engines.made == []


def tiny(**fields: Any) -> GenerateRequest:
    return GenerateRequest(model="tiny", prompt="x", **fields)


@pytest.mark.parametrize(
    ("req", "error", "message"),
    [
        (GenerateRequest(model="nope", prompt="x"), ModelMissing, "model 'nope' not found"),
        (ChatRequest(model=""), InvalidRequest, "model is required"),
        (
            GenerateRequest(model="tiny", prompt="x", think="very"),
            InvalidRequest,
            'invalid think value: "very"',
        ),
        (GenerateRequest(model="tiny", prompt="x", keep_alive=True), InvalidRequest, "keep_alive must be"),
        (GenerateRequest(model="tiny", prompt="x", format="yaml"), InvalidRequest, 'invalid format: "yaml"'),
        (
            GenerateRequest(model="tiny", prompt="x", raw=True, system="s"),
            InvalidRequest,
            "raw mode does not",
        ),
    ],
)
def test_refusals_are_domain_errors(runtime: Runtime, req: Any, error: type, message: str) -> None:
    run = runtime.chat if isinstance(req, ChatRequest) else runtime.generate
    with pytest.raises(error, match=message.replace("(", r"\(")):
        collect(runtime, run(req))


def test_embed(runtime: Runtime) -> None:
    async def run() -> dict[str, Any]:
        try:
            return await runtime.embed(EmbedRequest(model="tiny", inputs=["ab"]))
        finally:
            await runtime.runners.close()

    reply = asyncio.run(run())
    assert reply["prompt_eval_count"] == 3 and len(reply["embeddings"]) == 1


def test_canceled_is_raised_for_an_aborted_done() -> None:
    from llamita.server.engine import Done, FinishReason
    from llamita.server.runtime.prepare import check_finished

    with pytest.raises(Canceled, match="request superseded"):
        check_finished(Done(FinishReason.ABORTED, 1, 1, 0, 0, 0, 0, [], "request superseded"))
