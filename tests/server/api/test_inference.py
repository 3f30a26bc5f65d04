"""generate/chat/embed/ps through the official `ollama` client and raw HTTP, on a real server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import ollama
import pytest

from llamita.server.model.default_model import DEFAULT_SYSTEM

pytestmark = pytest.mark.model

MODEL = "smollm2:135m"
GREEDY = {"temperature": 0, "num_predict": 16}


@pytest.fixture
def client(server):
    c = ollama.Client(host=server.url)
    yield c
    c.close()


def runners(server):
    return server.app.state.runners


def test_generate_stream_and_non_stream_agree(client) -> None:
    full = client.generate(model=MODEL, prompt="What is 2+2?", options=GREEDY)
    assert full.done and full.done_reason in ("stop", "length") and full.response
    assert full.eval_count and full.prompt_eval_count and full.total_duration
    assert full.context and isinstance(full.context[0], int)
    parts = list(client.generate(model=MODEL, prompt="What is 2+2?", options=GREEDY, stream=True))
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert "".join(p.response for p in parts) == full.response


def test_prompt_cache_tokens_on_repeat(server) -> None:
    body = {"model": MODEL, "prompt": "Explain what a hash map is.", "stream": False, "options": GREEDY}
    first = httpx.post(server.url + "/api/generate", json=body, timeout=60).json()
    second = httpx.post(server.url + "/api/generate", json=body, timeout=60).json()
    assert second["prompt_cache_tokens"] >= first["prompt_eval_count"] - 1
    assert second["prompt_eval_count"] == 1
    assert second["response"] == first["response"]


def test_chat(client) -> None:
    reply = client.chat(model=MODEL, messages=[{"role": "user", "content": "Say hello."}], options=GREEDY)
    assert reply.message.role == "assistant" and reply.message.content
    chunks = list(
        client.chat(
            model=MODEL, messages=[{"role": "user", "content": "Say hello."}], options=GREEDY, stream=True
        )
    )
    assert "".join(c.message.content for c in chunks) == reply.message.content


def test_embed_and_legacy_embeddings(client) -> None:
    out = client.embed(model=MODEL, input=["hello", "world"])
    assert len(out.embeddings) == 2
    assert abs(sum(x * x for x in out.embeddings[0]) - 1) < 1e-4
    short = client.embed(model=MODEL, input="hello", dimensions=8)
    assert len(short.embeddings[0]) == 8 and abs(sum(x * x for x in short.embeddings[0]) - 1) < 1e-4
    legacy = client.embeddings(model=MODEL, prompt="hello")
    assert len(legacy.embedding) == len(out.embeddings[0])
    assert abs(sum(x * x for x in legacy.embedding) - 1) > 1e-3  # the legacy route is not normalised


def test_load_ps_and_unload(server, client) -> None:
    loaded = client.generate(model=MODEL, prompt="")
    assert loaded.done_reason == "load"
    ps = client.ps().models
    assert [m.model for m in ps] == [MODEL] and ps[0].context_length == 4096 and ps[0].size > 0
    gone = client.generate(model=MODEL, prompt="", keep_alive=0)
    assert gone.done_reason == "unload"
    for _ in range(50):
        if not client.ps().models:
            break
        time.sleep(0.05)
    assert client.ps().models == []


def test_keep_alive_forever(server, client) -> None:
    client.generate(model=MODEL, prompt="", keep_alive=-1)
    until = client.ps().models[0].expires_at
    assert until.year > 2300


def test_debug_render_only(server) -> None:
    r = httpx.post(
        server.url + "/api/generate",
        json={"model": MODEL, "prompt": "hi", "system": "Be kind.", "_debug_render_only": True},
    )
    rendered = r.json()["_debug_info"]["rendered_template"]
    assert (
        rendered
        == "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    r = httpx.post(
        server.url + "/api/chat",
        json={
            "model": MODEL,
            "_debug_render_only": True,
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ],
        },
    )
    assert r.json()["_debug_info"]["rendered_template"] == (
        f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n"  # the model's SYSTEM when the chat has none
        "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n"
        "<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n"
    )


def test_fim_model_from_generated_gguf(server, client, tmp_path: Path) -> None:
    from ggufgen import write_tiny_gguf

    path = write_tiny_gguf(tmp_path / "coder.gguf", fim=True)
    digest = client.create_blob(path)
    client.create(model="tiny-coder", files={"coder.gguf": digest})
    assert "insert" in client.show("tiny-coder").capabilities
    body = {"model": "tiny-coder", "prompt": "def add(", "suffix": "    return c", "_debug_render_only": True}
    rendered = httpx.post(server.url + "/api/generate", json=body).json()["_debug_info"]["rendered_template"]
    assert rendered == "<|fim_prefix|>def add(<|fim_suffix|>    return c<|fim_middle|>"
    out = client.generate(
        model="tiny-coder",
        prompt="def add(",
        suffix="    return c",
        options={"num_predict": 4, "temperature": 0},
    )
    assert out.done and out.eval_count
    plain = httpx.post(server.url + "/api/generate", json={**body, "suffix": ""}).json()
    assert "<|fim_prefix|>" not in plain["_debug_info"]["rendered_template"]  # "" is not FIM


BAD = [
    (
        "insert-unsupported",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "suffix": "b"},
        400,
        "registry.ollama.ai/library/smollm2:135m does not support insert",
    ),
    (
        "keep-alive-no-unit",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "keep_alive": "300"},
        400,
        'time: missing unit in duration "300"',
    ),
    (
        "option-wrong-type",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "options": {"temperature": "hot"}},
        400,
        'option "temperature" must be of type float32',
    ),
    (
        "bad-schema",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "format": {"type": "nonsense"}},
        400,
        "invalid format",
    ),
    ("bad-format", "/api/generate", {"model": MODEL, "prompt": "a", "format": "yaml"}, 400, "invalid format"),
    (
        "raw-with-system",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "raw": True, "system": "s"},
        400,
        "raw mode does not support template, system, or context",
    ),
    (
        "think-unsupported",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "think": True},
        400,
        '"smollm2:135m" does not support thinking',
    ),
    (
        "images-no-vision",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "images": ["aGVsbG8="]},
        400,
        "does not support vision",
    ),
    ("generate-no-model", "/api/generate", {"prompt": "a"}, 404, "model '' not found"),
    ("generate-unknown", "/api/generate", {"model": "nope", "prompt": "a"}, 404, "model 'nope' not found"),
    ("chat-no-model", "/api/chat", {"messages": []}, 400, "model is required"),
    (
        "chat-content-not-a-string",
        "/api/chat",
        {"model": MODEL, "messages": [{"role": "user", "content": 123}]},
        400,
        "json: cannot unmarshal number into Go struct field Message.messages.content of type string",
    ),
    ("embed-bad-input", "/api/embed", {"model": MODEL, "input": 5}, 400, "invalid input type"),
    (
        "top-logprobs",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "top_logprobs": 21},
        400,
        "top_logprobs must be between 0 and 20",
    ),
    (
        "too-long-no-truncate",
        "/api/chat",
        {
            "model": MODEL,
            "truncate": False,
            "options": {"num_ctx": 64},
            "messages": [{"role": "user", "content": "word " * 200}],
        },
        400,
        "longer than the context length",
    ),
]


CHAT_HI = [{"role": "user", "content": "hi"}]


def _called_before(calls: object) -> list[dict]:
    """A chat whose earlier assistant turn carries ``calls`` as its tool calls."""
    return [{"role": "assistant", "content": "", "tool_calls": calls}, *CHAT_HI]


def _tool(function: object) -> list[dict]:
    return [{"type": "function", "function": function}]


# Issue 11: each was a 500 (or silently accepted) and is a 400 before anything runs.
BAD += [
    (
        "context-not-a-list",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "context": "x"},
        400,
        "json: cannot unmarshal string into Go struct field GenerateRequest.context of type []int",
    ),
    (
        "context-not-ints",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "context": [1, 1.5]},
        400,
        "json: cannot unmarshal number 1.5 into Go struct field GenerateRequest.context of type int",
    ),
    (
        "context-beyond-the-vocabulary",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "context": [1, 99999999]},
        400,
        "invalid context: token 99999999 is not in the model's vocabulary (0 to 49151)",
    ),
    (
        "context-negative-id",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "context": [-1]},
        400,
        "invalid context: token -1 is not in the model's vocabulary",
    ),
    (
        "prompt-not-a-string",
        "/api/generate",
        {"model": MODEL, "prompt": 5},
        400,
        "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string",
    ),
    (
        "schema-llama-cpp-rejects",
        "/api/generate",
        {"model": MODEL, "prompt": "a", "format": {"enum": []}},
        400,
        "invalid format: llama.cpp cannot compile the grammar of the schema",
    ),
    (
        "chat-schema-llama-cpp-rejects",
        "/api/chat",
        {"model": MODEL, "messages": CHAT_HI, "format": {"anyOf": []}},
        400,
        "invalid format: llama.cpp cannot compile the grammar of the schema",
    ),
    (
        "tools-not-a-list",
        "/api/chat",
        {"model": MODEL, "messages": CHAT_HI, "tools": "x"},
        400,
        "json: cannot unmarshal string into Go struct field ChatRequest.tools of type api.Tools",
    ),
    (
        "tool-not-an-object",
        "/api/chat",
        {"model": MODEL, "messages": CHAT_HI, "tools": [1]},
        400,
        "json: cannot unmarshal number into Go struct field ChatRequest.tools of type api.Tool",
    ),
    (
        "tool-properties-not-an-object",
        "/api/chat",
        {"model": MODEL, "messages": CHAT_HI, "tools": _tool({"name": "f", "parameters": {"properties": 5}})},
        400,
        "json: cannot unmarshal number into Go struct field ToolFunctionParameters.tools.function.parameters"
        ".properties of type map[string]api.ToolProperty",
    ),
    (
        "tool-required-not-a-list",
        "/api/chat",
        {"model": MODEL, "messages": CHAT_HI, "tools": _tool({"name": "f", "parameters": {"required": 5}})},
        400,
        "json: cannot unmarshal number into Go struct field ToolFunctionParameters.tools.function.parameters"
        ".required of type []string",
    ),
    (
        "tool-name-not-a-string",
        "/api/chat",
        {"model": MODEL, "messages": CHAT_HI, "tools": _tool({"name": 5})},
        400,
        "json: cannot unmarshal number into Go struct field ToolFunction.tools.function.name of type string",
    ),
    (
        "tool-calls-not-a-list",
        "/api/chat",
        {"model": MODEL, "messages": _called_before("x")},
        400,
        "json: cannot unmarshal string into Go struct field Message.messages.tool_calls"
        " of type []api.ToolCall",
    ),
    (
        "tool-call-name-not-a-string",
        "/api/chat",
        {"model": MODEL, "messages": _called_before([{"function": {"name": 5, "arguments": {}}}])},
        400,
        "json: cannot unmarshal number into Go struct field ToolCallFunction.messages.tool_calls.function"
        ".name of type string",
    ),
    (
        "tool-call-arguments-not-an-object",
        "/api/chat",
        {"model": MODEL, "messages": _called_before([{"function": {"name": "f", "arguments": [1]}}])},
        400,
        "json: cannot unmarshal array into Go struct field ToolCallFunction.messages.tool_calls.function"
        ".arguments of type api.ToolCallFunctionArguments",
    ),
    (
        "legacy-embeddings-prompt-not-a-string",
        "/api/embeddings",
        {"model": MODEL, "prompt": 5},
        400,
        "json: cannot unmarshal number into Go struct field EmbeddingRequest.prompt of type string",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_requests(server, path: str, body: dict, status: int, message: str) -> None:
    r = httpx.post(server.url + path, json=body, timeout=60)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_tools_on_a_template_without_tools(server, client) -> None:
    client.create(model="plain", from_=MODEL, template="{{ .Prompt }}")
    body = {"model": "plain", "messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function"}]}
    r = httpx.post(server.url + "/api/chat", json=body, timeout=60)
    assert r.status_code == 400
    assert r.json()["error"] == "registry.ollama.ai/library/plain:latest does not support tools"


def test_the_default_model_takes_tools(client) -> None:
    assert client.show(MODEL).capabilities == ["completion", "tools"]


def test_unknown_and_null_options_are_ignored(server) -> None:
    body = {
        "model": MODEL,
        "prompt": "hi",
        "stream": False,
        "options": {"num_predict": 3, "temperature": None, "no_such_option": 1, "mirostat": 0},
    }
    r = httpx.post(server.url + "/api/generate", json=body, timeout=60)
    assert r.status_code == 200 and r.json()["eval_count"] <= 3


def test_long_prompt_is_truncated_by_default(server) -> None:
    body = {
        "model": MODEL,
        "stream": False,
        "options": {"num_ctx": 64, "num_predict": 2},
        "messages": [{"role": "user", "content": "word " * 200}],
    }
    r = httpx.post(server.url + "/api/chat", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["prompt_eval_count"] < 64


def test_client_disconnect_mid_stream_frees_the_sequence(server) -> None:
    body = {"model": MODEL, "prompt": "Write a very long story.", "options": {"num_predict": 2000}}
    with httpx.stream("POST", server.url + "/api/generate", json=body, timeout=60) as r:
        for _ in r.iter_lines():
            break
    engine = next(iter(runners(server).loaded.values())).engine
    for _ in range(200):
        if not engine.stats().running and engine.stats().aborted:
            break
        time.sleep(0.02)
    assert engine.stats().running == 0 and engine.stats().aborted >= 1


def test_queue_full_gives_503s_and_no_crash(seeded_store, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import _serve

    monkeypatch.setenv("OLLAMA_MAX_QUEUE", "10")
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "2")
    for running in _serve(seeded_store):
        httpx.post(running.url + "/api/generate", json={"model": MODEL, "prompt": ""}, timeout=60)

        async def fire(url: str) -> list[int]:
            async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=200)) as http:
                body = {
                    "model": MODEL,
                    "prompt": "Say a word.",
                    "stream": False,
                    "options": {"num_predict": 4},
                }
                replies = await asyncio.gather(
                    *[http.post(url + "/api/generate", json=body) for _ in range(100)]
                )
                for reply in replies:
                    if reply.status_code == 503:
                        assert reply.json()["error"] == (
                            "server busy, please try again.  maximum pending requests exceeded"
                        )
                return [reply.status_code for reply in replies]

        codes = asyncio.run(fire(running.url))
        assert set(codes) <= {200, 503} and codes.count(503) > 0 and codes.count(200) >= 10
        ok = httpx.post(
            running.url + "/api/generate",
            json={"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 2}},
            timeout=60,
        )
        assert ok.status_code == 200
        assert json.loads(ok.text)["done"]


def test_a_smaller_num_ctx_on_a_larger_loaded_model_still_fits_the_prompt_to_it(server) -> None:
    """The loaded 4096-token runner is reused for ``num_ctx`` 128, but the chat is cut to 128
    tokens, as Ollama's reload at 128 would cut it (not a prefill of the whole history)."""
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"Tell me one more fact about {i}."}
        for i in range(60)
    ]
    base = {"model": MODEL, "stream": False}
    loaded = httpx.post(f"{server.url}/api/generate", json={**base, "prompt": ""}, timeout=300)
    assert loaded.status_code == 200
    body = {**base, "messages": history, "options": {"num_ctx": 128, "num_predict": 1, "temperature": 0}}
    done = httpx.post(f"{server.url}/api/chat", json=body, timeout=300).json()
    assert done["done"] is True, done
    assert done.get("prompt_eval_count", 0) + done.get("prompt_cache_tokens", 0) <= 128
    [runner] = httpx.get(f"{server.url}/api/ps", timeout=30).json()["models"]
    assert runner["context_length"] == 4096  # reused, not reloaded


def test_embed_truncate_is_honoured(server) -> None:
    """/api/embed cuts an input to num_ctx unless ``truncate: false``, then Ollama's 400."""
    body = {"model": MODEL, "input": "word " * 300, "options": {"num_ctx": 64}}
    cut = httpx.post(server.url + "/api/embed", json=body, timeout=120)
    assert cut.status_code == 200 and cut.json()["prompt_eval_count"] == 64
    refused = httpx.post(server.url + "/api/embed", json={**body, "truncate": False}, timeout=120)
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "the input length exceeds the context length"},
    )
    short = httpx.post(
        server.url + "/api/embed", json={**body, "input": "hi", "truncate": False}, timeout=120
    )
    assert short.status_code == 200 and len(short.json()["embeddings"]) == 1


def test_generate_truncate_false_refuses_a_long_prompt(server) -> None:
    body = {
        "model": MODEL,
        "prompt": "word " * 200,
        "stream": False,
        "options": {"num_ctx": 64, "num_predict": 1},
    }
    assert httpx.post(server.url + "/api/generate", json=body, timeout=120).status_code == 200
    r = httpx.post(server.url + "/api/generate", json={**body, "truncate": False}, timeout=120)
    assert r.status_code == 400 and "longer than the context length" in r.json()["error"]


def test_shift_false_stops_at_the_context(server) -> None:
    """With ``shift: false`` a generation that fills num_ctx ends there (done_reason length)."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
        "stream": False,
        "shift": False,
        "options": {"num_ctx": 64, "num_predict": 500, "temperature": 0},
    }
    done = httpx.post(server.url + "/api/chat", json=body, timeout=300).json()
    assert done["done_reason"] == "length", done
    assert done["prompt_eval_count"] + done.get("prompt_cache_tokens", 0) + done["eval_count"] <= 64 + 1
