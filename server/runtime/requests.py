"""Typed generate, chat and embed requests: what the API translators hand the runtime.

The translators (``api/request.py``) check the wire types (Go's unmarshal errors) and fill
these.  Fields whose meaning depends on the model (``keep_alive``, ``think``, ``format``,
``options``) stay as sent: the runtime checks them after the model is found, in Ollama's
order, so a request with two faults gets Ollama's error for the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass(kw_only=True)
class _Inference:
    model: Any = ""  # as sent: echoed in every reply
    keep_alive: Any = None
    think: Any = None
    format: Any = None
    options: Any = None
    logprobs: bool = False
    top_logprobs: int = 0
    shift: bool = True
    truncate: bool = True
    debug_render_only: bool = False  # Ollama's ``_debug_render_only``: the prompt, not an answer


@dataclass(kw_only=True)
class GenerateRequest(_Inference):
    prompt: str = ""
    suffix: str = ""
    system: str = ""
    template: str = ""
    context: list[int] = field(default_factory=list)
    raw: bool = False
    images: list[Any] = field(default_factory=list)


@dataclass(kw_only=True)
class ChatRequest(_Inference):
    messages: list[Json] = field(default_factory=list)
    tools: list[Json] | None = None
    # llamita's extension (OpenAI-chat-shaped, checked by the API): "auto", "none", "required"
    # or "function", the one named by ``forced_tool``; enforced by a grammar unless "auto".
    tool_choice: str = "auto"
    forced_tool: str = ""
    parallel_tool_calls: bool = True  # False: at most one call is returned


@dataclass(kw_only=True)
class EmbedRequest:
    model: Any = ""
    inputs: Any = None  # ``input`` (``/api/embed``) or ``prompt`` (``/api/embeddings``), as sent
    legacy: bool = False  # ``/api/embeddings``: one unnormalised vector
    keep_alive: Any = None
    options: Any = None
    truncate: bool = True
    dimensions: Any = None
