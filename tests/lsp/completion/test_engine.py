"""The completion engine against a scripted model server (httpx.MockTransport): what it asks and when.

The same behaviours are covered end to end against a real llamita in ``test_features.py``; here each
one is pinned deterministically (model text, timing, failures).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llamita.lsp.client import OllamaClient
from llamita.lsp.completion.context import OtherFile
from llamita.lsp.completion.engine import CompletionEngine, CompletionRequest
from llamita.lsp.completion.filters import Suggestion
from llamita.lsp.settings import Settings
from llamita.lsp.status import Status

DOC = "def add(a, b):\n    \n\nprint(add(1, 2))\n"
CURSOR = DOC.index("    \n") + 4


class Scripted:
    """A fake model server: ``/api/show`` from ``capabilities``, ``/api/generate`` from ``answers``.

    An answer is the response text of a finished generation, a whole reply body (dict), or an
    error status (int) with Ollama's error body.
    """

    def __init__(
        self,
        capabilities: list[str],
        answers: list[Any],
        family: str = "llama",
        model_info: dict[str, Any] | None = None,
    ) -> None:
        self.capabilities = capabilities
        self.model_info = model_info or {}
        self.answers = answers
        self.family = family
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((request.url.path, dict(request.headers), body))
        if request.url.path == "/api/show":
            if body["model"] == "missing":
                return httpx.Response(404, json={"error": "model 'missing' not found"})
            reply = {"capabilities": self.capabilities, "details": {"family": self.family}}
            return httpx.Response(200, json={**reply, "model_info": self.model_info})
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0) if self.answers else ""
        if isinstance(answer, int):
            return httpx.Response(answer, json={"error": "request canceled"})
        if isinstance(answer, dict):
            return httpx.Response(200, json=answer)
        return httpx.Response(200, json={"response": answer, "done": True, "done_reason": "stop"})

    def generated(self) -> list[dict[str, Any]]:
        return [body for path, _, body in self.requests if path == "/api/generate"]


def make_engine(
    fake: Callable[[httpx.Request], Any], **overrides: Any
) -> tuple[CompletionEngine, list[str], list[str]]:
    settings = Settings(
        **{"server_url": "http://model", "debounce_ms": 0, "completion_model": "coder", **overrides}
    )
    logs: list[str] = []
    warnings: list[str] = []
    client = OllamaClient(settings.server_url, api_key="k", transport=httpx.MockTransport(fake))
    return CompletionEngine(settings, client, Status(logs.append, warnings.append)), logs, warnings


def request(text: str = DOC, offset: int = CURSOR, **kw: Any) -> CompletionRequest:
    return CompletionRequest(uri="file:///a.py", text=text, offset=offset, language_id="python", **kw)


@pytest.mark.asyncio
async def test_native_fim_request_and_postprocessing() -> None:
    fake = Scripted(["completion", "insert"], ["return a + b\n\n\nprint(add(3, 4))"])
    engine, logs, _ = make_engine(fake)
    assert await engine.complete(request()) == Suggestion("return a + b")
    [show, (path, headers, body)] = fake.requests
    assert show[0] == "/api/show" and path == "/api/generate"
    assert body["prompt"] == DOC[:CURSOR] and body["suffix"] == DOC[CURSOR:] and "raw" not in body
    assert headers["x-llamita-session"].startswith("llamita-lsp-")
    assert headers["x-llamita-priority"] == "interactive"  # served ahead of chat and review work
    assert headers["authorization"] == "Bearer k"
    assert body["keep_alive"] == "30m" and body["stream"] is False
    assert any("native FIM" in line for line in logs)


@pytest.mark.asyncio
async def test_raw_mode_with_the_family_template() -> None:
    fake = Scripted(["completion"], ["return a + b"])
    engine, _, _ = make_engine(fake, fim_template="codellama")
    await engine.complete(request())
    [body] = fake.generated()
    assert body["raw"] is True and body["prompt"].startswith("<PRE> def add(a, b):")
    assert body["prompt"].endswith(" <MID>") and "<EOT>" in body["options"]["stop"]


@pytest.mark.asyncio
async def test_cache_and_typing_through_need_no_new_request() -> None:
    fake = Scripted(["insert"], ["return a + b"])
    engine, _, _ = make_engine(fake)
    assert await engine.complete(request()) == Suggestion("return a + b")
    assert await engine.complete(request()) == Suggestion("return a + b")
    typed = DOC[:CURSOR] + "ret" + DOC[CURSOR:]
    assert await engine.complete(request(typed, CURSOR + 3)) == Suggestion("urn a + b")
    assert len(fake.generated()) == 1
    assert engine.cache.hits == 2


@pytest.mark.asyncio
async def test_nothing_useful_is_cached_but_an_explicit_request_asks_again() -> None:
    fake = Scripted(["insert"], ["", "return a * b"])
    engine, _, _ = make_engine(fake)
    assert await engine.complete(request()) is None
    assert await engine.complete(request()) is None
    assert len(fake.generated()) == 1
    assert await engine.complete(request(invoked=True)) == Suggestion("return a * b")
    assert len(fake.generated()) == 2


@pytest.mark.asyncio
async def test_newer_request_supersedes_and_closes_the_older_call() -> None:
    fake = Scripted(["insert"], ["first answer", "second answer"])
    fake.gate = asyncio.Event()
    engine, _, _ = make_engine(fake)
    first = asyncio.ensure_future(engine.complete(request()))
    while not fake.generated():
        await asyncio.sleep(0.01)
    typed = DOC[:CURSOR] + "r" + DOC[CURSOR:]
    second = asyncio.ensure_future(engine.complete(request(typed, CURSOR + 1)))
    assert await asyncio.wait_for(first, 2) is None
    fake.gate.set()
    assert await asyncio.wait_for(second, 2) == Suggestion("first answer")
    assert engine.stats.superseded == 1


CUT_SHORT = [
    # What llamita sent before issue 11 for a request superseded by the same session: 200 with
    # the partial text and no done line (a stream without its done line reads the same).
    pytest.param({"response": "return a", "done": False}, id="partial-200"),
    pytest.param({"response": "return a", "done": True, "done_reason": "aborted"}, id="aborted-reason"),
    pytest.param(499, id="499-canceled"),
]


@pytest.mark.parametrize("answer", CUT_SHORT)
@pytest.mark.asyncio
async def test_a_superseded_answer_is_neither_shown_nor_cached(answer: Any) -> None:
    fake = Scripted(["insert"], [answer, "return a + b"])
    engine, _, warnings = make_engine(fake)
    assert await engine.complete(request()) is None
    assert engine.stats.superseded == 1 and warnings == []  # a supersede is no problem to report
    assert await engine.complete(request()) == Suggestion("return a + b")  # asked again, not cached
    assert len(fake.generated()) == 2


@pytest.mark.asyncio
async def test_cancelling_the_caller_cancels_the_model_call() -> None:
    fake = Scripted(["insert"], ["never"])
    fake.gate = asyncio.Event()
    engine, _, _ = make_engine(fake)
    task = asyncio.ensure_future(engine.complete(request()))
    while not fake.generated():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.stats.superseded == 0 and not engine._inflight


@pytest.mark.asyncio
async def test_debounce_drops_requests_superseded_while_waiting() -> None:
    fake = Scripted(["insert"], ["return a + b"])
    engine, _, _ = make_engine(fake, debounce_ms=200, adaptive_debounce=False)
    first = asyncio.ensure_future(engine.complete(request()))
    await asyncio.sleep(0.05)
    typed = DOC[:CURSOR] + "r" + DOC[CURSOR:]
    assert await engine.complete(request(typed, CURSOR + 1)) == Suggestion("return a + b")
    assert await first is None
    assert len(fake.generated()) == 1


@pytest.mark.asyncio
async def test_no_request_mid_word_or_for_disabled_languages() -> None:
    fake = Scripted(["insert"], ["anything"])
    engine, _, _ = make_engine(fake, languages={"markdown": False})
    text = "print_value(1)\n"
    assert await engine.complete(request(text, text.index("_value"))) is None
    md = CompletionRequest(uri="file:///r.md", text="# Title\n", offset=8, language_id="markdown")
    assert await engine.complete(md) is None
    assert fake.requests == []


@pytest.mark.asyncio
async def test_unreachable_server_warns_once_then_backs_off() -> None:
    calls = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("connection refused", request=request)

    engine, _, warnings = make_engine(refuse)
    assert await engine.complete(request()) is None
    assert await engine.complete(request(invoked=True)) is None
    assert calls == 1  # the second request is skipped while backing off
    assert len(warnings) == 1 and "no model server answers at http://model" in warnings[0]
    engine._retry_at = 0.0
    assert await engine.complete(request(invoked=True)) is None
    assert calls == 2 and len(warnings) == 1


@pytest.mark.asyncio
async def test_missing_model_is_reported_by_name() -> None:
    fake = Scripted(["insert"], [])
    engine, _, warnings = make_engine(fake)
    engine.configure(Settings(server_url="http://model", debounce_ms=0, completion_model="missing"))
    assert await engine.complete(request()) is None
    assert warnings == ["llamita: model 'missing' not found at http://model: model 'missing' not found"]


@pytest.mark.asyncio
async def test_concurrent_requests_share_one_show() -> None:
    fake = Scripted(["insert"], ["x"])
    engine, _, _ = make_engine(fake)
    await asyncio.gather(engine.model_info("coder"), engine.model_info("coder"), engine.model_info("coder"))
    assert [path for path, _, _ in fake.requests] == ["/api/show"]


@pytest.mark.asyncio
async def test_changed_request_settings_invalidate_cached_suggestions() -> None:
    fake = Scripted(["insert"], ["return a + b", "return b + a"])
    engine, _, _ = make_engine(fake)
    assert await engine.complete(request()) == Suggestion("return a + b")
    engine.configure(engine.settings.merged({"debounceMs": 10}))
    assert await engine.complete(request()) == Suggestion("return a + b")  # debounce is not part of a request
    engine.configure(engine.settings.merged({"numPredict": 32, "debounceMs": 0}))
    assert await engine.complete(request()) == Suggestion("return b + a")
    assert [body["options"]["num_predict"] for body in fake.generated()] == [128, 32]
    assert [path for path, _, _ in fake.requests].count("/api/show") == 1  # same server and model


REPO_VOCAB = {
    "tokenizer.ggml.tokens": [
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        "<|repo_name|>",
        "<|file_sep|>",
        "a",
    ],
    "tokenizer.ggml.token_type": [3, 3, 3, 3, 3, 1],
}
MAIN = "from util import helper\n\nvalue = helper(2)\n"


def _repo_request(root: Path, **kw: Any) -> CompletionRequest:
    (root / "util.py").write_text("def helper(x):\n    return x * 2\n")
    path = root / "main.py"
    return CompletionRequest(
        uri=path.as_uri(),
        text=MAIN,
        offset=len(MAIN),
        language_id="python",
        path=str(path),
        root=str(root),
        **kw,
    )


@pytest.mark.asyncio
async def test_repo_level_format_when_the_vocabulary_has_its_markers(tmp_path: Path) -> None:
    fake = Scripted(["insert"], ["print(value)"], model_info=REPO_VOCAB)
    engine, logs, _ = make_engine(fake)
    await engine.complete(_repo_request(tmp_path))
    assert fake.requests[0][2] == {"model": "coder", "verbose": True}  # the vocabulary is asked for once
    [body] = fake.generated()
    assert body["raw"] is True and "suffix" not in body
    assert body["prompt"] == (
        f"<|repo_name|>{tmp_path.name}\n<|file_sep|>util.py\ndef helper(x):\n    return x * 2\n"
        f"<|file_sep|>main.py\n<|fim_prefix|>{MAIN}<|fim_suffix|><|fim_middle|>"
    )
    assert any("repo-level FIM" in line for line in logs)


@pytest.mark.asyncio
async def test_context_off_or_a_forced_template_keeps_the_plain_prompt(tmp_path: Path) -> None:
    fake = Scripted(["insert"], ["print(value)"], model_info=REPO_VOCAB)
    engine, _, _ = make_engine(fake, context=False)
    await engine.complete(_repo_request(tmp_path))
    forced, _, _ = make_engine(fake, fim_template="qwen2.5-coder")
    await forced.complete(_repo_request(tmp_path))
    [plain, commented] = fake.generated()
    assert plain["prompt"] == MAIN and "raw" not in plain
    # A forced template means "this model's format": the context comes as comments (native FIM here).
    assert commented["prompt"] == "# Path: util.py\n# def helper(x):\n#     return x * 2\n" + MAIN


@pytest.mark.asyncio
async def test_comment_context_before_the_prefix_in_native_fim(tmp_path: Path) -> None:
    fake = Scripted(["insert"], ["print(value)"])
    engine, _, _ = make_engine(fake, definition_share=0.0)
    others = (OtherFile("notes.py", "def twice(value):\n    return helper(value) * 2\n", 0),)
    await engine.complete(_repo_request(tmp_path, others=others))
    [body] = fake.generated()
    assert body["prompt"] == "# Path: notes.py\n# def twice(value):\n#     return helper(value) * 2\n" + MAIN
