"""Thinking models through the API: ``think`` defaults on, and the block comes back apart.

The model is SmolLM2 with a template that opens ``<think>`` for it (as DeepSeek-R1's and
Qwen3's templates do), so what it generates is reasoning until it closes the block; a tiny
model rarely does, which is exactly the case that must not leak into ``content``.
"""

from __future__ import annotations

import httpx
import ollama
import openai
import pytest

pytestmark = pytest.mark.model

THINKING_TEMPLATE = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>
{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ if .Think }}<think>
{{ end }}"""
OPTIONS = {"temperature": 0, "num_predict": 8}


@pytest.fixture
def thinker(server) -> str:
    client = ollama.Client(host=server.url)
    try:
        client.create(model="thinker", from_="smollm2:135m", template=THINKING_TEMPLATE)
        assert "thinking" in (client.show("thinker").capabilities or [])
    finally:
        client.close()
    return "thinker"


def _render(server, thinker: str, **extra) -> str:
    body = {"model": thinker, "messages": [{"role": "user", "content": "hi"}], "_debug_render_only": True}
    reply = httpx.post(server.url + "/api/chat", json={**body, **extra}, timeout=60).json()
    return reply["_debug_info"]["rendered_template"]


def test_think_defaults_on_for_a_thinking_model(server, thinker: str) -> None:
    assert _render(server, thinker).endswith("<|im_start|>assistant\n<think>\n")
    assert _render(server, thinker, think=False).endswith("<|im_start|>assistant\n")


def test_chat_returns_the_reasoning_as_thinking(server, thinker: str) -> None:
    client = ollama.Client(host=server.url)
    try:
        messages = [{"role": "user", "content": "hi"}]
        thought = client.chat(model=thinker, messages=messages, options=OPTIONS)
        parts = list(client.chat(model=thinker, messages=messages, options=OPTIONS, stream=True))
        plain = client.chat(model=thinker, messages=messages, options=OPTIONS, think=False)
    finally:
        client.close()
    assert thought.message.thinking and "<think>" not in thought.message.thinking
    assert thought.message.content == ""  # the block was never closed: nothing is the answer yet
    assert "".join(p.message.thinking or "" for p in parts) == thought.message.thinking
    assert plain.message.content and not plain.message.thinking


def test_generate_returns_thinking_too(server, thinker: str) -> None:
    client = ollama.Client(host=server.url)
    try:
        reply = client.generate(model=thinker, prompt="hi", options=OPTIONS)
        plain = client.generate(model=thinker, prompt="hi", options=OPTIONS, think=False)
    finally:
        client.close()
    assert reply.thinking and reply.response == ""
    assert plain.response and not plain.thinking


def test_a_model_without_thinking_refuses_think(server) -> None:
    body = {"model": "smollm2:135m", "prompt": "hi", "think": True, "stream": False}
    reply = httpx.post(server.url + "/api/generate", json=body, timeout=60)
    assert reply.status_code == 400 and reply.json()["error"] == '"smollm2:135m" does not support thinking'


def test_openai_chat_puts_thinking_in_reasoning(server, thinker: str) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    reply = client.chat.completions.create(
        model=thinker, messages=[{"role": "user", "content": "hi"}], max_tokens=8, temperature=0
    )
    message = reply.choices[0].message
    assert (message.model_extra or {}).get("reasoning") and not message.content


def test_format_without_an_explicit_think_answers_directly(server, thinker: str) -> None:
    body = {"model": thinker, "prompt": "hi", "format": "json", "stream": False, "options": OPTIONS}
    reply = httpx.post(server.url + "/api/generate", json=body, timeout=60).json()
    assert reply["response"].lstrip().startswith("{") and "thinking" not in reply
