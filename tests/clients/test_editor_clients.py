"""Replicas of editor clients that no registry ships (Llama Coder, Continue's Ollama provider, LangChain).

Why: these clients send bodies the official SDKs never do (no ``stream`` key, ``name`` instead of
``model``, ``keep_alive: 1800``, null options, ``format: ""``) and parse replies their own way.
Each test sends exactly the body the client reference records for it (clients.md §2 Llama Coder,
§3 Continue, §7 LangChain: read from their source and observed through a recording stub) and reads
the reply as that client does; only values are shrunk (temperature 0, a few tokens) to keep it short.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import httpx
import pytest

pytestmark = pytest.mark.model

MODEL = "smollm2:135m"
TIMEOUT = 120

# Llama Coder picks the prompt format by model-name prefix: "smollm2" gets the codellama one.
LLAMA_CODER_STOPS = ["<END>", "<EOD>", "<EOT>"]
PREFIX = "# Language: Python\n# Path: /work/app.py\ndef add(a, b):\n    "
SUFFIX = "\n\nprint(add(1, 2))\n"
LLAMA_CODER_PROMPT = f"<PRE> {PREFIX} <SUF> {SUFFIX} <MID>"

# Continue: its default template stops (a model name without "qwen"), its own extras, /api/show's stops.
CONTINUE_STOPS = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<|endoftext|>"]
CONTINUE_STOPS += ["</fim_middle>", "</code>", "/src/", "#- coding: utf-8", "```"]
CONTINUE_PARAM_LINE = re.compile(r"^(\S+)\s+((?:\".*\")|\S+)$")
# LangChain OllamaEmbeddings sends every option it knows, unset ones as null.
LANGCHAIN_OPTION_KEYS = ("mirostat", "mirostat_eta", "mirostat_tau", "num_ctx", "num_gpu", "num_thread")
LANGCHAIN_OPTION_KEYS += ("repeat_last_n", "repeat_penalty", "temperature", "stop", "tfs_z", "top_k", "top_p")
LANGCHAIN_NULL_OPTIONS = dict.fromkeys(LANGCHAIN_OPTION_KEYS)


def ndjson(response: httpx.Response) -> list[dict]:
    """Strict NDJSON, as every streaming client needs it: 200, one object per line, no blank line."""
    assert response.status_code == 200, response.read()  # Continue throws on anything but exactly 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    raw = response.read().decode()
    assert raw.endswith("\n"), raw
    lines = raw[:-1].split("\n")
    assert all(lines), f"blank line in {raw!r}"
    parts = [json.loads(line) for line in lines]
    assert parts[-1]["done"] is True and all(p["done"] is False for p in parts[:-1])
    return parts


def post_stream(url: str, body: dict) -> list[dict]:
    with httpx.stream("POST", url, json=body, timeout=TIMEOUT) as response:
        return ndjson(response)


def llama_coder_body(prompt: str, stops: list[str], num_predict: int = 24) -> dict:
    """Llama Coder's request: raw, no ``stream`` key (so it streams), its three options."""
    options = {"stop": stops, "num_predict": num_predict, "temperature": 0}
    return {"model": MODEL, "prompt": prompt, "raw": True, "options": options}


def llama_coder_generate(url: str, prompt: str, stops: list[str]) -> str:
    """It joins ``response`` of every line until the body ends (it never reads ``done``)."""
    parts = post_stream(url + "/api/generate", llama_coder_body(prompt, stops))
    return "".join(p.get("response", "") for p in parts)


def test_llama_coder_finds_models_by_exact_name(server, tiny_coder: str) -> None:
    r = httpx.get(server.url + "/api/tags", timeout=TIMEOUT)
    assert r.status_code == 200
    names = [m["name"] for m in r.json()["models"]]
    assert MODEL in names and "tiny-coder:latest" in names  # ":latest" is spelled out, as it compares


def test_llama_coder_raw_fim_streams_and_stops_server_side(server) -> None:
    parts = post_stream(server.url + "/api/generate", llama_coder_body(LLAMA_CODER_PROMPT, LLAMA_CODER_STOPS))
    assert len(parts) > 2, "an omitted stream key must mean streaming"
    text = "".join(p["response"] for p in parts)
    assert text and not any(stop in text for stop in LLAMA_CODER_STOPS)
    # It relies on server stops alone: cut at a string the model is known to write (not at its very
    # start), and the reply must end just before it, the stop itself not echoed.
    starts = range(len(text) // 2, len(text) - 2)
    stop = next(text[i : i + 3] for i in starts if text.index(text[i : i + 3]) > 0)
    cut = llama_coder_generate(server.url, LLAMA_CODER_PROMPT, [*LLAMA_CODER_STOPS, stop])
    assert cut == text[: text.index(stop)]


def test_llama_coder_abort_mid_stream_leaves_server_healthy(server) -> None:
    body = llama_coder_body(LLAMA_CODER_PROMPT, LLAMA_CODER_STOPS, num_predict=2000)
    with httpx.stream("POST", server.url + "/api/generate", json=body, timeout=TIMEOUT) as r:
        assert r.status_code == 200
        first = next(r.iter_lines())
        assert json.loads(first)["done"] is False  # then it closes the connection, as fetch's abort does
    assert llama_coder_generate(server.url, LLAMA_CODER_PROMPT, LLAMA_CODER_STOPS)
    ps = httpx.get(server.url + "/api/ps", timeout=TIMEOUT).json()["models"]
    loaded = [m for m in ps if m["name"] == MODEL]
    assert loaded, ps
    datetime.fromisoformat(loaded[0]["expires_at"])  # Open WebUI parses it this way


def continue_show(url: str, model: str) -> tuple[bool, list[str]]:
    """Continue's ``/api/show`` ``{"name"}``: FIM support from the template, stops from ``parameters``."""
    r = httpx.post(url + "/api/show", json={"name": model}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    show = r.json()
    stops = []
    for line in show.get("parameters", "").splitlines():
        match = CONTINUE_PARAM_LINE.match(line)
        assert match, f"Continue cannot parse {line!r}"
        key, value = match.groups()
        if key == "stop":
            stops.append(json.loads(value))
        if key == "num_ctx":  # chat would fail client-side with maxTokens 4096 "too close"
            assert int(value) >= 8192, line
    return ".Suffix" in show["template"], stops


def continue_options(num_predict: int, stop: list[str] | None = None) -> dict:
    options = {"num_ctx": 8192, "num_predict": num_predict, "temperature": 0}  # num_ctx is always sent
    return {**options, "stop": stop} if stop is not None else options


def continue_fim(url: str, model: str, prefix: str, suffix: str, stops: list[str]) -> list[dict]:
    body = {
        "model": model,
        "prompt": prefix,
        "suffix": suffix or "\n",  # Continue turns an empty suffix into a newline
        "options": continue_options(8, [*CONTINUE_STOPS, *stops]),
        "keep_alive": 1800,
    }
    parts = post_stream(url + "/api/generate", body)
    for part in parts:
        assert "error" not in part and "response" in part  # Continue throws on error, reads "response"
    return parts


def test_continue_detects_fim_and_parses_show(server, tiny_coder: str) -> None:
    assert continue_show(server.url, tiny_coder) == (True, ["<|endoftext|>", "<|fim_pad|>"])
    fim, stops = continue_show(server.url, MODEL)
    assert fim is False and stops  # SmolLM2 is a chat model: Continue renders raw prompts for it
    body = {"model": MODEL, "prompt": "def f(", "suffix": "\n", "options": continue_options(8)}
    r = httpx.post(server.url + "/api/generate", json=body, timeout=TIMEOUT)
    assert r.status_code == 400 and "does not support insert" in r.json()["error"]  # the server agrees


def test_continue_fim_renders_the_suffix_branch(server, tiny_coder: str) -> None:
    _, stops = continue_show(server.url, tiny_coder)
    parts = continue_fim(server.url, tiny_coder, "def add(a, b):\n    return ", "", stops)
    assert parts[-1]["done_reason"] in ("stop", "length")
    assert 0 < parts[-1]["eval_count"] <= 8
    # The server built the prompt from the template's .Suffix branch: the FIM string Continue's own
    # complete mode would send with raw:true.
    body = {
        "model": tiny_coder,
        "prompt": "def add(a, b):\n    return ",
        "suffix": "\n",
        "_debug_render_only": True,
    }
    r = httpx.post(server.url + "/api/generate", json=body, timeout=TIMEOUT)
    rendered = r.json()["_debug_info"]["rendered_template"]
    assert rendered == "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>"


def test_continue_fim_at_start_of_file_is_a_load(server, tiny_coder: str) -> None:
    """An empty prefix is a load: Ollama answers it with one c.JSON object (not an NDJSON stream),
    which Continue's line reader takes as its one line."""
    body = {
        "model": tiny_coder,
        "prompt": "",
        "suffix": "def main():\n    pass\n",
        "options": continue_options(8, CONTINUE_STOPS),
        "keep_alive": 1800,
    }
    with httpx.stream("POST", server.url + "/api/generate", json=body, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        lines = response.read().decode().splitlines()
    parts = [json.loads(line) for line in lines]
    assert len(parts) == 1 and parts[0]["response"] == "" and parts[0]["done_reason"] == "load"


def test_continue_chat_streams_without_a_stream_key(server) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
        "options": continue_options(8),
        "keep_alive": 1800,
    }
    parts = post_stream(server.url + "/api/chat", body)
    assert len(parts) > 1
    assert all(p["message"]["role"] == "assistant" for p in parts)  # role "tool" makes Continue throw
    assert "".join(p["message"]["content"] for p in parts)


def test_continue_embed_batch(server) -> None:
    chunks = ["def add(a, b):\n    return a + b\n", "print(add(1, 2))\n"]
    r = httpx.post(server.url + "/api/embed", json={"model": MODEL, "input": chunks}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    embeddings = r.json()["embeddings"]
    assert len(embeddings) == 2 and all(embeddings)  # empty means "Ollama generated empty embedding"


def test_continue_reads_the_not_found_error(server) -> None:
    body = {"model": "ghost:7b", "prompt": "x", "suffix": "\n", "options": continue_options(8)}
    r = httpx.post(server.url + "/api/generate", json=body, timeout=TIMEOUT)
    assert r.status_code == 404
    message = r.json()["error"].replace('"', "'")  # Continue JSON.parses a 404 body, then matches this
    assert re.search(r"model '(.*)' not found", message).group(1) == "ghost:7b"


def test_langchain_null_options_and_empty_format(server) -> None:
    options = {**LANGCHAIN_NULL_OPTIONS, "num_predict": 5}
    body = {"model": MODEL, "stream": True, "options": options, "format": "", "prompt": "Say hello."}
    parts = post_stream(server.url + "/api/generate", body)
    assert "".join(p["response"] for p in parts) and parts[-1]["eval_count"] <= 5
    # ChatOllama sends only the options set (num_predict and temperature here) and always `tools: []`.
    chat = {"model": MODEL, "stream": True, "options": {"num_predict": 5, "temperature": 0}}
    chat |= {"messages": [{"role": "user", "content": "Hi"}], "tools": []}  # [] must mean "no tools"
    assert post_stream(server.url + "/api/chat", chat)[-1]["done_reason"]
    embed = {"model": MODEL, "input": ["hello"], "options": LANGCHAIN_NULL_OPTIONS}
    r = httpx.post(server.url + "/api/embed", json=embed, timeout=TIMEOUT)
    assert r.status_code == 200 and len(r.json()["embeddings"]) == 1, r.text
