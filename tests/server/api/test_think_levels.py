"""Think levels reach the template: native ``think`` ("low" | "medium" | "high" | "max", or a
bool) on ``/api/chat`` and ``/api/generate``, and OpenAI's ``reasoning_effort`` /
``reasoning.effort`` on ``/v1/chat/completions``, which map onto those levels.

The model is SmolLM2 with a template that writes ``.ThinkLevel`` into the prompt, so the
rendered prompt (``_debug_render_only``) shows the level each route handed the template.
"""

from __future__ import annotations

from typing import Any

import httpx
import ollama
import pytest

pytestmark = pytest.mark.model

# The level goes in a system line, as gpt-oss's template puts it ("Reasoning: high").
LEVEL_TEMPLATE = """{{- if .Think }}<|im_start|>system
Reasoning: {{ .ThinkLevel }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>
{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ if .Think }}<think>
{{ end }}"""
HI = [{"role": "user", "content": "hi"}]
LEVELS = ("low", "medium", "high", "max")


@pytest.fixture
def leveled(server) -> str:
    client = ollama.Client(host=server.url)
    try:
        client.create(model="leveled", from_="smollm2:135m", template=LEVEL_TEMPLATE)
        assert "thinking" in (client.show("leveled").capabilities or [])
    finally:
        client.close()
    return "leveled"


def _rendered(server, path: str, body: dict[str, Any]) -> str:
    reply = httpx.post(
        server.url + path, json={**body, "_debug_render_only": True, "stream": False}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["_debug_info"]["rendered_template"]


def _level(rendered: str) -> str | None:
    """The level the template was given, checked against how the prompt ends."""
    if not rendered.startswith("<|im_start|>system\nReasoning: "):
        assert rendered.endswith("<|im_start|>assistant\n"), rendered
        return None
    assert rendered.endswith("<|im_start|>assistant\n<think>\n"), rendered
    return rendered.split("Reasoning: ", 1)[1].split("<|im_end|>", 1)[0]


@pytest.mark.parametrize(
    ("think", "level"), [*((lv, lv) for lv in LEVELS), (True, "medium"), (None, "medium"), (False, None)]
)
def test_native_think_levels(server, leveled: str, think: Any, level: str | None) -> None:
    extra = {} if think is None else {"think": think}
    chat = _rendered(server, "/api/chat", {"model": leveled, "messages": HI, **extra})
    generate = _rendered(server, "/api/generate", {"model": leveled, "prompt": "hi", **extra})
    assert _level(chat) == level and _level(generate) == level


@pytest.mark.parametrize(
    ("reasoning", "level"),
    [
        ({"reasoning_effort": "minimal"}, "low"),
        ({"reasoning_effort": "low"}, "low"),
        ({"reasoning_effort": "medium"}, "medium"),
        ({"reasoning_effort": "high"}, "high"),
        ({"reasoning_effort": "xhigh"}, "max"),
        ({"reasoning_effort": "max"}, "max"),
        ({"reasoning_effort": "none"}, None),
        ({"reasoning": {"effort": "high"}}, "high"),
        ({"reasoning": {"effort": "low"}, "reasoning_effort": "max"}, "low"),
        ({}, "medium"),  # a thinking model thinks unless told not to
    ],
)
def test_openai_reasoning_effort(server, leveled: str, reasoning: dict[str, Any], level: str | None) -> None:
    text = _rendered(server, "/v1/chat/completions", {"model": leveled, "messages": HI, **reasoning})
    assert _level(text) == level


def test_a_level_thinks_for_real(server, leveled: str) -> None:
    body = {"model": leveled, "messages": HI, "think": "high", "stream": False, "options": {"num_predict": 4}}
    reply = httpx.post(server.url + "/api/chat", json=body, timeout=120).json()
    assert reply["message"]["thinking"] and reply["message"]["content"] == ""


def test_bad_levels_are_400(server, leveled: str) -> None:
    native = httpx.post(server.url + "/api/chat", json={"model": leveled, "messages": HI, "think": "huge"})
    assert native.status_code == 400 and native.json()["error"] == (
        'invalid think value: "huge" (must be "true", "false", "low", "medium", "high", "max")'
    )
    body = {"model": leveled, "messages": HI, "reasoning_effort": "huge"}
    v1 = httpx.post(server.url + "/v1/chat/completions", json=body)
    assert v1.status_code == 400 and v1.json()["error"]["message"].startswith(
        'invalid reasoning value: "huge"'
    )
    plain = httpx.post(
        server.url + "/api/chat", json={"model": "smollm2:135m", "messages": HI, "think": "low"}
    )
    assert plain.status_code == 400 and plain.json()["error"] == '"smollm2:135m" does not support thinking'
