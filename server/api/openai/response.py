"""Native ``/api/*`` replies and chunks → OpenAI objects, chunks and errors.

The counterpart of :mod:`.openai_request`: pure functions over plain dicts.  Shapes follow
Ollama's ``openai/openai.go`` and the stream framing of ``middleware/openai.go``
(reference §8): one ``created`` per stream, a role-opening first chunk, a separate finish
chunk for chat, and a ``choices: []`` usage chunk when asked.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Json = dict[str, Any]

SYSTEM_FINGERPRINT = "fp_ollama"


# --- errors, ids, times -------------------------------------------------------------------


def openai_error(message: str, status: int) -> Json:
    """The OpenAI error body; SDKs pick their exception class from the status and read ``message``.

    499 (superseded by a newer request of the same session, or aborted) has the type ``canceled``.
    """
    kind = {
        400: "invalid_request_error",
        403: "permission_error",
        404: "not_found_error",
        499: "canceled",
    }.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def new_id(prefix: str) -> str:
    """Ollama's response ids: ``chatcmpl-<0..998>`` / ``cmpl-<0..998>``."""
    return f"{prefix}-{random.randrange(999)}"


def unix_time(stamp: Any) -> int:
    """Seconds of a native RFC 3339 ``created_at``; now when absent or unparsable."""
    if isinstance(stamp, str) and stamp:
        try:
            return int(datetime.fromisoformat(stamp).timestamp())
        except ValueError:
            pass
    return int(time.time())


# --- responses ----------------------------------------------------------------------------


def usage(native: Json) -> Json:
    prompt = int(native.get("prompt_eval_count") or 0)
    completion = int(native.get("eval_count") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _new_call_id() -> str:
    return "call_" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=8))


def to_tool_calls(calls: Any) -> list[Json]:
    """Native tool calls → OpenAI ones: arguments as a JSON string, plus ``type`` and ``index``."""
    converted: list[Json] = []
    for position, call in enumerate(calls or []):
        function = call.get("function") or {}
        arguments = json.dumps(function.get("arguments") or {}, ensure_ascii=False, separators=(",", ":"))
        converted.append(
            {
                "id": call.get("id") or _new_call_id(),
                "index": function.get("index", position),
                "type": "function",
                "function": {"name": function.get("name") or "", "arguments": arguments},
            }
        )
    return converted


def _finish_reason(done_reason: str | None, tool_calls: bool) -> str | None:
    """``done_reason`` with ``stop`` relabelled ``tool_calls`` once the model called a tool."""
    return "tool_calls" if done_reason == "stop" and tool_calls else done_reason or None


def merge_chat(chunks: Iterable[Json]) -> Json:
    """The native non-streaming ``/api/chat`` reply: content, thinking and calls concatenated."""
    content: list[str] = []
    thinking: list[str] = []
    calls: list[Json] = []
    logprobs: list[Json] = []
    last: Json = {}
    for chunk in chunks:
        message = chunk.get("message") or {}
        content.append(message.get("content") or "")
        thinking.append(message.get("thinking") or "")
        calls.extend(message.get("tool_calls") or [])
        logprobs.extend(chunk.get("logprobs") or [])
        last = chunk
    merged: Json = {
        "role": (last.get("message") or {}).get("role") or "assistant",
        "content": "".join(content),
    }
    if any(thinking):
        merged["thinking"] = "".join(thinking)
    if calls:
        merged["tool_calls"] = calls
    reply = {**last, "message": merged}
    reply.pop("logprobs", None)
    if logprobs:
        reply["logprobs"] = logprobs
    return reply


def to_chat_completion(native: Json, completion_id: str) -> Json:
    """A merged native chat reply → an OpenAI ``chat.completion`` object."""
    message = native.get("message") or {}
    calls = to_tool_calls(message.get("tool_calls"))
    reply: Json = {"role": message.get("role") or "assistant", "content": message.get("content") or ""}
    if message.get("thinking"):
        reply["reasoning"] = message["thinking"]
    if calls:
        reply["tool_calls"] = calls
    choice: Json = {
        "index": 0,
        "message": reply,
        "finish_reason": _finish_reason(native.get("done_reason"), bool(calls)),
    }
    if native.get("logprobs"):
        choice["logprobs"] = {"content": native["logprobs"]}
    completion: Json = {
        "id": completion_id,
        "object": "chat.completion",
        "created": unix_time(native.get("created_at")),
        "model": native.get("model") or "",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [choice],
        "usage": usage(native),
    }
    if native.get("_debug_info") is not None:
        completion["_debug_info"] = native["_debug_info"]
    return completion


@dataclass
class _Stream:
    """What a stream remembers between native chunks."""

    id: str
    include_usage: bool = False
    created: int | None = None  # pinned from the first chunk: OpenAI shares one value per stream


@dataclass
class ChatStream(_Stream):
    started: bool = False  # the role chunk has been sent
    sent_tool_call: bool = False


def _chat_chunk(state: ChatStream, model: str, choices: list[Json], usage_: Json | None = None) -> Json:
    chunk: Json = {
        "id": state.id,
        "object": "chat.completion.chunk",
        "created": state.created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
    }
    if usage_ is not None:
        chunk["usage"] = usage_
    return chunk


def _deltas(native: Json, state: ChatStream) -> list[tuple[Json, Any]]:
    """``(delta, logprobs)`` pairs; reasoning mixed with content/tool calls is split in two."""
    message = native.get("message") or {}
    role: Json = {} if state.started else {"role": "assistant"}
    content = message.get("content") or ""
    thinking = message.get("thinking") or ""
    calls = to_tool_calls(message.get("tool_calls"))
    logprobs = native.get("logprobs") or None
    tool_part: Json = {"tool_calls": calls} if calls else {}
    if thinking and (content or calls):
        return [({**role, "reasoning": thinking}, logprobs), ({"content": content, **tool_part}, None)]
    delta: Json = {**role, "content": content, **tool_part}
    if thinking:
        delta["reasoning"] = thinking
    return [(delta, logprobs)]


def to_chat_chunks(native: Json, state: ChatStream) -> list[Json]:
    """One native ``/api/chat`` chunk → the OpenAI chunks to send for it, in order.

    The native metrics-only final chunk produces no empty content chunk; the done chunk adds
    a finish chunk (``delta: {}``) and, with ``include_usage``, a ``choices: []`` usage chunk.
    """
    if state.created is None:
        state.created = unix_time(native.get("created_at"))
    model = native.get("model") or ""
    message = native.get("message") or {}
    done = bool(native.get("done"))
    has_output = any((message.get("content"), message.get("thinking"), message.get("tool_calls"))) or bool(
        native.get("logprobs")
    )
    chunks: list[Json] = []
    if has_output or not (done and state.started):
        for delta, logprobs in _deltas(native, state):
            choice: Json = {"index": 0, "delta": delta, "finish_reason": None}
            if logprobs:
                choice["logprobs"] = {"content": logprobs}
            chunks.append(_chat_chunk(state, model, [choice]))
            state.sent_tool_call = state.sent_tool_call or "tool_calls" in delta
        state.started = True
    if done:
        reason = _finish_reason(native.get("done_reason") or "stop", state.sent_tool_call)
        chunks.append(_chat_chunk(state, model, [{"index": 0, "delta": {}, "finish_reason": reason}]))
        if state.include_usage:
            chunks.append(_chat_chunk(state, model, [], usage(native)))
    return chunks


def merge_generate(chunks: Iterable[Json]) -> Json:
    """The native non-streaming ``/api/generate`` reply: responses and logprobs concatenated."""
    text: list[str] = []
    logprobs: list[Json] = []
    last: Json = {}
    for chunk in chunks:
        text.append(chunk.get("response") or "")
        logprobs.extend(chunk.get("logprobs") or [])
        last = chunk
    reply = {**last, "response": "".join(text)}
    reply.pop("logprobs", None)
    if logprobs:
        reply["logprobs"] = logprobs
    return reply


def completion_logprobs(entries: Any, offset: int = 0) -> Json | None:
    """Native logprobs → the legacy completions shape (parallel lists, top choices as maps)."""
    if not entries:
        return None
    tokens = [entry.get("token") or "" for entry in entries]
    return {
        "tokens": tokens,
        "token_logprobs": [entry.get("logprob") for entry in entries],
        "top_logprobs": [
            {top.get("token") or "": top.get("logprob") for top in entry.get("top_logprobs") or []}
            for entry in entries
        ],
        "text_offset": list(itertools.accumulate((len(t) for t in tokens[:-1]), initial=offset)),
    }


def _completion_choice(native: Json, finish_reason: str | None, offset: int) -> Json:
    choice: Json = {"text": native.get("response") or "", "index": 0, "finish_reason": finish_reason}
    logprobs = completion_logprobs(native.get("logprobs"), offset)
    if logprobs:
        choice["logprobs"] = logprobs
    return choice


def _completion_object(completion_id: str, created: int, model: str, choices: list[Json]) -> Json:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
    }


def to_completion(native: Json, completion_id: str) -> Json:
    """A merged native generate reply → an OpenAI ``text_completion`` object."""
    choice = _completion_choice(native, native.get("done_reason") or None, 0)
    completion = _completion_object(
        completion_id, unix_time(native.get("created_at")), native.get("model") or "", [choice]
    )
    completion["usage"] = usage(native)
    if native.get("_debug_info") is not None:
        completion["_debug_info"] = native["_debug_info"]
    return completion


@dataclass
class CompletionStream(_Stream):
    offset: int = 0  # characters sent so far, for logprobs text_offset


def to_completion_chunks(native: Json, state: CompletionStream) -> list[Json]:
    """One native ``/api/generate`` chunk → OpenAI completion chunks.

    ``finish_reason`` stays null until the done chunk, which carries it; a ``choices: []``
    usage chunk follows when ``include_usage`` is set.
    """
    if state.created is None:
        state.created = unix_time(native.get("created_at"))
    model = native.get("model") or ""
    done = bool(native.get("done"))
    reason = (native.get("done_reason") or "stop") if done else None
    chunks = [
        _completion_object(state.id, state.created, model, [_completion_choice(native, reason, state.offset)])
    ]
    state.offset += len(native.get("response") or "")
    if done and state.include_usage:
        usage_chunk = _completion_object(state.id, state.created, model, [])
        usage_chunk["usage"] = usage(native)
        chunks.append(usage_chunk)
    return chunks


def _float32_base64(vector: list[float]) -> str:
    """What the OpenAI SDK decodes by default: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def to_embedding_list(native: Json, encoding_format: str = "float", model: str | None = None) -> Json:
    """A native ``/api/embed`` reply → an OpenAI embedding list (floats or base64)."""
    as_base64 = encoding_format.lower() == "base64"
    data = [
        {"object": "embedding", "embedding": _float32_base64(v) if as_base64 else list(v), "index": i}
        for i, v in enumerate(native.get("embeddings") or [])
    ]
    tokens = int(native.get("prompt_eval_count") or 0)
    return {
        "object": "list",
        "data": data,
        "model": model if model is not None else native.get("model") or "",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --- models -------------------------------------------------------------------------------


class _ModelName(Protocol):
    @property
    def shortest(self) -> str: ...

    @property
    def namespace(self) -> str: ...


class StoredModel(Protocol):
    """What a store manifest offers the model list (``Manifest`` satisfies it)."""

    @property
    def name(self) -> _ModelName: ...

    @property
    def modified(self) -> float: ...


def to_model(model_id: str, modified: float, owned_by: str) -> Json:
    return {"id": model_id, "object": "model", "created": int(modified), "owned_by": owned_by}


def to_model_list(models: Iterable[StoredModel]) -> Json:
    """``/v1/models``: newest first like ``/api/tags``; an empty store gives ``data: null`` as in Ollama."""
    ordered = sorted(models, key=lambda m: m.modified, reverse=True)
    data = [to_model(m.name.shortest, m.modified, m.name.namespace) for m in ordered]
    return {"object": "list", "data": data or None}
