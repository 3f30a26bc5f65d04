"""Replicas of twinny, llm-ls and Open WebUI, clients no registry can hand us as runnable code.

Why: twinny and llm-ls ship as a VS Code VSIX or a Rust binary, and Open WebUI is a 3 GB install,
yet each sends bodies the SDKs never do: twinny's FIM without ``raw``/``suffix``/``stop`` and its
Ollama-style body to ``/v1/chat/completions``, llm-ls's single-JSON ``stream: false`` reply read as
``{"response"}`` or ``{"error"}``, Open WebUI's tool history with ``index``/``id``/``tool_call_id``
and its ``keep_alive: 0`` unload. Each test sends the body clients.md §8/§9 records and parses the
reply the way that client does; only values are shrunk (temperature 0, a few tokens).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

pytestmark = pytest.mark.model

MODEL = "smollm2:135m"
TIMEOUT = 120
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# twinny's "codellama" FIM template (its default) and the stop it strips client-side.
TWINNY_PREFIX = "def add(a, b):\n    "
TWINNY_SUFFIX = "\n\nprint(add(1, 2))\n"
TWINNY_FIM = f"<PRE> \n{TWINNY_PREFIX} <SUF> {TWINNY_SUFFIX} <MID>"
TWINNY_STOPS = ("<EOT>",)
# llm-ls prompt: fim.prefix + before + fim.suffix + after + fim.middle (starcoder-style tokens).
LLM_LS_FIM = f"<fim_prefix>{TWINNY_PREFIX}<fim_suffix>{TWINNY_SUFFIX}<fim_middle>"
LLM_LS_REQUEST_BODY = {"options": {"temperature": 0, "top_p": 0.95, "num_predict": 8}}


# ---- shared parsing ------------------------------------------------------------------------
def ndjson_lines(response: httpx.Response) -> list[dict]:
    """Strict NDJSON: status exactly 200, one object per line, no blank line, done only last."""
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("application/x-ndjson")
    raw = response.read().decode()
    assert raw.endswith("\n") and "\n\n" not in raw, raw
    parts = [json.loads(line) for line in raw[:-1].split("\n")]
    assert parts[-1]["done"] is True and all(p["done"] is False for p in parts[:-1])
    return parts


def rendered(url: str, path: str, body: dict) -> str:
    """The prompt the server would feed the model for ``body`` (``_debug_render_only``)."""
    r = httpx.post(url + path, json={**body, "_debug_render_only": True}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["_debug_info"]["rendered_template"]


def twinny_keep_alive(setting: str) -> str | int:
    """twinny sends its keepAlive setting as-is, except the string '-1', which goes as a number."""
    return -1 if setting == "-1" else setting


# ---- twinny --------------------------------------------------------------------------------
def twinny_fim_body(model: str, keep_alive: str = "-1") -> dict:
    """twinny's FIM request: no raw, no suffix, no stop; ``stream: true`` and its two options."""
    return {
        "model": model,
        "prompt": TWINNY_FIM,
        "stream": True,
        "keep_alive": twinny_keep_alive(keep_alive),
        "options": {"temperature": 0, "num_predict": 24},
    }


def twinny_fim(url: str, body: dict) -> tuple[str, bool]:
    """Read ``response`` per line; abort once a single-line completion has its line.

    Returns the completion with twinny's stop words removed and whether the stream was aborted.
    """
    text = ""
    with httpx.stream("POST", url + "/api/generate", json=body, timeout=TIMEOUT) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("application/x-ndjson")
        for line in r.iter_lines():
            assert line, "blank NDJSON line"
            part = json.loads(line)
            assert "error" not in part, part
            text += part["response"]
            if part["done"]:
                return strip_stops(text), False
            if "\n" in text.lstrip("\n"):  # a line is complete: twinny aborts the fetch
                return strip_stops(text), True
    raise AssertionError(f"stream ended without done: {text!r}")


def strip_stops(text: str) -> str:
    for stop in TWINNY_STOPS:
        text = text.replace(stop, "")
    return text


def twinny_chat_body(content: str) -> dict:
    """twinny's Ollama-style body to the OpenAI endpoint: ``options`` and ``keep_alive`` included."""
    return {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": content}],
        "keep_alive": twinny_keep_alive("-1"),
        "options": {"temperature": 0, "num_predict": 8},
    }


def twinny_chat(url: str, body: dict, max_deltas: int) -> tuple[str, list[str], bool]:
    """Lines with ``data:`` stripped and JSON-parsed; what fails to parse ([DONE], blanks) is ignored.

    Returns the text of ``choices[0].delta.content``, the lines that did not parse, and whether the
    stream was closed early (after ``max_deltas`` content deltas, as a user pressing stop would).
    """
    text, unparsed, deltas = "", [], 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=TIMEOUT) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            payload = line.removeprefix("data:").strip()
            try:
                chunk = json.loads(payload)
            except json.JSONDecodeError:
                unparsed.append(line)
                continue
            assert "error" not in chunk, chunk
            content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
            if content:
                text += content
                deltas += 1
                if deltas >= max_deltas:
                    return text, unparsed, True
    return text, unparsed, False


def test_twinny_fim_on_a_chat_model_is_wrapped_by_its_template(server) -> None:
    names = [m["name"] for m in httpx.get(server.url + "/api/tags", timeout=TIMEOUT).json()["models"]]
    assert MODEL in names  # twinny's model picker shows /api/tags by name
    body = twinny_fim_body(MODEL)
    # No raw and no suffix: the template's non-FIM branch runs, so SmolLM2 (a chat model) gets the
    # FIM string as a user turn, after its system prompt: what Ollama does with a qwen2.5-coder.
    assert rendered(server.url, "/api/generate", body) == (
        f"<|im_start|>system\n{SMOLLM2_SYSTEM}<|im_end|>\n"
        f"<|im_start|>user\n{TWINNY_FIM}<|im_end|>\n<|im_start|>assistant\n"
    )
    text, _aborted = twinny_fim(server.url, body)
    assert text.strip(), "no completion streamed"
    assert "<|im_end|>" not in text and "<|im_start|>" not in text  # special tokens never leak
    # keep_alive -1 (sent as a number) keeps the model loaded for good.
    ps = httpx.get(server.url + "/api/ps", timeout=TIMEOUT).json()["models"]
    loaded = next(m for m in ps if m["name"] == MODEL)
    assert datetime.fromisoformat(loaded["expires_at"]) > datetime.now(UTC) + timedelta(days=365)


def test_twinny_fim_on_a_code_model_passes_the_prompt_through(server, tiny_coder: str) -> None:
    body = twinny_fim_body(tiny_coder, keep_alive="5m")
    assert rendered(server.url, "/api/generate", body) == TWINNY_FIM  # a base model's {{ .Prompt }}
    twinny_fim(server.url, body)  # the tiny model writes noise: it must stream to done or the abort
    ps = httpx.get(server.url + "/api/ps", timeout=TIMEOUT).json()["models"]
    loaded = next(m for m in ps if m["name"] == tiny_coder)
    expires = datetime.fromisoformat(loaded["expires_at"])
    assert timedelta(minutes=4) < expires - datetime.now(UTC) <= timedelta(minutes=5, seconds=5)


def test_twinny_fim_abort_after_one_line_leaves_server_healthy(server) -> None:
    body = {**twinny_fim_body(MODEL), "options": {"temperature": 0, "num_predict": 400}}
    body["prompt"] = "Count from 1 to 10, one number per line."  # it goes on well past 10
    text, aborted = twinny_fim(server.url, body)
    assert aborted and text.strip(), text  # the connection closed mid-stream
    again, _ = twinny_fim(server.url, twinny_fim_body(MODEL))
    assert again.strip()


def test_twinny_chat_ollama_style_body_on_the_openai_endpoint(server) -> None:
    # The body carries options/keep_alive the OpenAI endpoint must tolerate (and, like Ollama,
    # ignore: so num_predict does not bound the reply and the test stops reading after 24 deltas).
    text, unparsed, closed = twinny_chat(server.url, twinny_chat_body("Say hello."), max_deltas=24)
    assert text.strip(), "no choices[0].delta.content streamed"
    # Only the blank SSE separators and, when the reply ended on its own, [DONE] failed JSON.parse.
    assert [line for line in unparsed if line] == ([] if closed else ["data: [DONE]"]), unparsed


def test_twinny_chat_stream_ends_with_done_marker(server) -> None:
    body = {**twinny_chat_body("Say hello."), "max_tokens": 6}  # bounded so the end is always read
    text, unparsed, closed = twinny_chat(server.url, body, max_deltas=10**6)
    assert not closed and text.strip()
    assert [line for line in unparsed if line] == ["data: [DONE]"], unparsed


# ---- llm-ls --------------------------------------------------------------------------------
def llm_ls_generate(url: str, model: str, prompt: str) -> tuple[int, str | None, str | None]:
    """llm-ls's ollama backend: request_body + prompt/model + ``stream: false``, no raw.

    The whole body is deserialized as ``{"response": str}``, else ``{"error": str}`` (serde
    untagged, in that order); returns (status, response, error).
    """
    body = {**LLM_LS_REQUEST_BODY, "prompt": prompt, "model": model, "stream": False}
    r = httpx.post(url + "/api/generate", json=body, timeout=TIMEOUT)
    reply = json.loads(r.content)  # one JSON document, not NDJSON lines
    assert isinstance(reply, dict), reply
    if isinstance(reply.get("response"), str):
        return r.status_code, reply["response"], None
    assert isinstance(reply.get("error"), str), f"neither response nor error: {reply}"
    return r.status_code, None, reply["error"]


def test_llm_ls_ollama_backend_reads_one_json_reply(server) -> None:
    status, response, error = llm_ls_generate(server.url, MODEL, LLM_LS_FIM)
    assert status == 200 and error is None
    assert response and "<|im_end|>" not in response
    r = httpx.post(
        server.url + "/api/generate",
        json={**LLM_LS_REQUEST_BODY, "prompt": LLM_LS_FIM, "model": MODEL, "stream": False},
        timeout=TIMEOUT,
    )
    assert r.headers["content-type"].startswith("application/json")
    reply = r.json()
    assert reply["done"] is True and 0 < reply["eval_count"] <= 8


def test_llm_ls_ollama_backend_on_a_code_model(server, tiny_coder: str) -> None:
    prompt = f"<|fim_prefix|>{TWINNY_PREFIX}<|fim_suffix|>{TWINNY_SUFFIX}<|fim_middle|>"  # user config
    body = {**LLM_LS_REQUEST_BODY, "prompt": prompt, "model": tiny_coder, "stream": False}
    assert rendered(server.url, "/api/generate", body) == prompt
    status, response, error = llm_ls_generate(server.url, tiny_coder, prompt)
    assert status == 200 and error is None and isinstance(response, str)


def test_llm_ls_ollama_backend_error_reply(server) -> None:
    status, response, error = llm_ls_generate(server.url, "ghost:7b", LLM_LS_FIM)
    assert status == 404 and response is None  # the untagged enum falls through to the error arm
    assert "ghost:7b" in error and "not found" in error


def test_llm_ls_openai_backend_reads_choices_text(server) -> None:
    body = {"max_tokens": 8, "temperature": 0, "top_p": 0.95}  # a typical request_body
    body |= {"prompt": LLM_LS_FIM, "model": MODEL, "stream": False}
    r = httpx.post(server.url + "/v1/completions", json=body, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    choices = r.json()["choices"]
    assert len(choices) == 1 and isinstance(choices[0]["text"], str) and choices[0]["text"]
    ghost = httpx.post(server.url + "/v1/completions", json={**body, "model": "ghost:7b"}, timeout=TIMEOUT)
    assert ghost.status_code == 404 and "choices" not in ghost.json()
    assert "not found" in ghost.json()["error"]["message"]


# ---- Open WebUI ----------------------------------------------------------------------------
OWUI_OPTIONS = {"temperature": 0, "num_predict": 8, "stop": ["<|im_end|>"]}  # max_tokens→num_predict
# A chat where the model called a tool and got its result, converted from OpenAI's shape the way
# Open WebUI does it: arguments as an object, and the OpenAI keys index/id/tool_call_id kept.
OWUI_TOOL_HISTORY = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "index": 0,
                "id": "call_8f2a1c",
                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_8f2a1c", "content": '{"temp_c": 21, "sky": "clear"}'},
    {"role": "user", "content": "So is it warm?"},
]


def owui_models(url: str) -> dict[str, dict]:
    """Its model list: ``m['model']`` and ``m['name']`` indexed (a KeyError breaks the UI), then
    ``/api/ps`` merged in with ``expires_at`` parsed by ``datetime.fromisoformat``."""
    tags = httpx.get(url + "/api/tags", timeout=TIMEOUT)
    assert tags.status_code == 200
    models = {m["model"]: {**m, "name": m["name"]} for m in tags.json()["models"]}
    ps = httpx.get(url + "/api/ps", timeout=TIMEOUT)
    assert ps.status_code == 200
    for running in ps.json()["models"]:
        models[running["model"]]["expires_at"] = int(
            datetime.fromisoformat(running["expires_at"]).timestamp()
        )
    return models


def owui_chat_body(messages: list[dict], stream: bool = True) -> dict:
    return {
        "model": MODEL,
        "messages": messages,
        "stream": stream,
        "options": OWUI_OPTIONS,
        "keep_alive": "5m",
    }


def owui_chat_stream(url: str, body: dict) -> tuple[str, dict]:
    """Line by line: content/thinking/tool_calls per line; metrics from the done line."""
    content = ""
    with httpx.stream("POST", url + "/api/chat", json=body, timeout=TIMEOUT) as r:
        parts = ndjson_lines(r)
    for part in parts:
        message = part["message"]
        assert message["role"] == "assistant"
        content += message.get("content") or ""
        assert not message.get("tool_calls"), message  # no tools were offered in this turn
    done = parts[-1]
    seconds = done["eval_duration"] / 1e9
    done["tokens_per_second"] = done["eval_count"] / seconds if seconds else 0.0  # guarded as it is
    for key in ("prompt_eval_count", "eval_count", "total_duration", "load_duration"):
        assert isinstance(done[key], int), key
    return content, done


def test_open_webui_connection_and_model_list(server) -> None:
    r = httpx.get(server.url + "/api/version", timeout=TIMEOUT)  # "verify connection"
    assert r.status_code == 200 and isinstance(r.json()["version"], str) and r.json()["version"]
    models = owui_models(server.url)
    assert models[MODEL]["name"] == MODEL and "expires_at" not in models[MODEL]  # nothing loaded yet
    content, _ = owui_chat_stream(server.url, owui_chat_body([{"role": "user", "content": "Hi"}]))
    assert content
    expires = owui_models(server.url)[MODEL]["expires_at"]
    assert 0 < expires - datetime.now(UTC).timestamp() <= 5 * 60 + 5


def test_open_webui_chat_history_with_tool_calls(server) -> None:
    body = owui_chat_body(OWUI_TOOL_HISTORY)
    text = rendered(server.url, "/api/chat", body)  # the tool turn reaches the prompt
    assert '{"temp_c": 21, "sky": "clear"}' in text and "So is it warm?" in text
    content, done = owui_chat_stream(server.url, body)
    assert content.strip()
    assert done["done_reason"] in ("stop", "length") and 0 < done["eval_count"] <= 8


def test_open_webui_task_call_without_streaming(server) -> None:
    # Title generation: one non-streamed call, read as a single JSON object.
    prompt = "Create a 3-word title for this chat:\nUSER: What is the weather in Paris?"
    r = httpx.post(
        server.url + "/api/chat",
        json=owui_chat_body([{"role": "user", "content": prompt}], stream=False),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    reply = r.json()
    assert reply["done"] is True and reply["message"]["role"] == "assistant"
    assert reply["message"]["content"].strip() and reply["eval_count"] <= 8


def test_open_webui_rag_embeddings(server) -> None:
    chunks = ["Paris is the capital of France.", "It is warm in summer."]
    r = httpx.post(
        server.url + "/api/embed", json={"input": chunks, "model": MODEL, "truncate": True}, timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    embeddings = r.json()["embeddings"]
    assert len(embeddings) == 2 and len(embeddings[0]) == len(embeddings[1]) > 0


def test_open_webui_embed_truncates_long_chunks(server) -> None:
    # A 64-token context makes a 150-token chunk too long without spending minutes on it.
    created = httpx.post(
        server.url + "/api/create",
        json={"model": "embed-64:latest", "from": MODEL, "parameters": {"num_ctx": 64}, "stream": False},
        timeout=TIMEOUT,
    )
    assert created.status_code == 200, created.text
    chunks = ["Paris is the capital of France.", "word " * 150]
    body = {"input": chunks, "model": "embed-64:latest", "truncate": True}
    r = httpx.post(server.url + "/api/embed", json=body, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert len(r.json()["embeddings"]) == 2 and r.json()["prompt_eval_count"] <= 2 * 64
    r = httpx.post(server.url + "/api/embed", json={**body, "truncate": False}, timeout=TIMEOUT)
    assert r.status_code == 400 and "context length" in r.json()["error"]  # what truncate:true avoids


def test_open_webui_passes_error_bodies_through(server) -> None:
    r = httpx.post(
        server.url + "/api/chat",
        json={**owui_chat_body([{"role": "user", "content": "Hi"}]), "model": "ghost:7b"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 404
    assert "ghost:7b" in r.json()["error"]  # shown to the user as the HTTP detail


def test_open_webui_unloads_a_model(server) -> None:
    owui_chat_stream(server.url, owui_chat_body([{"role": "user", "content": "Hi"}]))
    assert "expires_at" in owui_models(server.url)[MODEL]
    # Its unload: an empty prompt with keep_alive 0; the reply is read as one JSON object.
    r = httpx.post(
        server.url + "/api/generate", json={"model": MODEL, "prompt": "", "keep_alive": 0}, timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    reply = json.loads(r.content)
    assert reply["done"] is True and reply["done_reason"] == "unload" and reply["response"] == ""
    assert httpx.get(server.url + "/api/ps", timeout=TIMEOUT).json()["models"] == []
    assert "expires_at" not in owui_models(server.url)[MODEL]
