"""OpenAI request bodies → native ``/api/chat``, ``/api/generate`` and ``/api/embed`` bodies.

``/v1/*`` has no inference path of its own: each request is rewritten into the native body
and run by the same code as ``/api/*``.  These are pure functions over plain dicts, so the
compatibility contract is testable without a model.  Defaults and error messages follow
Ollama's ``openai/openai.go`` and ``middleware/openai.go`` (reference §8); a bad request
raises :class:`APIError` with status 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from llamita.server.api.errors import APIError
from llamita.server.gocompat.decode import go_kind

Json = dict[str, Any]

ENCODING_FORMATS = ("float", "base64")

# OpenAI reasoning efforts clamped onto Ollama's think levels (none turns thinking off).
_EFFORT_TO_THINK: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "max",
    "xhigh": "max",
    "ultra": "max",
}
_IMAGE_PREFIXES = ("data:;base64,", *(f"data:image/{t};base64," for t in ("jpeg", "jpg", "png", "webp")))
_IMAGE_URLS_UNSUPPORTED = "image URLs are not currently supported, please use base64 encoded data instead"


# --- errors and field parsing -------------------------------------------------------------


# The Go type ``encoding/json`` decodes each JSON kind to (into an ``interface {}``).
_GO_TYPES = {
    "bool": "bool",
    "number": "float64",
    "string": "string",
    "array": "[]interface {}",
    "object": "map[string]interface {}",
}


def go_type(value: Any) -> str:
    """The Go type ``encoding/json`` gives a decoded value; Ollama's messages quote it."""
    return "<nil>" if value is None else _GO_TYPES[go_kind(value)]


def _bad(message: str) -> APIError:
    return APIError(message, 400)


def _typed(body: Json, key: str, *types: type) -> Any:
    """``body[key]`` when absent/null or of one of ``types`` (a bool is never a number)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
        return value
    raise _bad(f"invalid type for '{key}' field: {go_type(value)}")


def _number(body: Json, key: str) -> int | float | None:
    return _typed(body, key, int, float)


def _integer(body: Json, key: str) -> int | None:
    """An integer field; ``5.0`` is accepted because JavaScript clients cannot tell it apart."""
    value = _number(body, key)
    if isinstance(value, float):
        if not value.is_integer():
            raise _bad(f"invalid type for '{key}' field: a whole number is required")
        return int(value)
    return value


def _flag(body: Json, key: str) -> bool:
    return bool(_typed(body, key, bool))


def _text(body: Json, key: str) -> str:
    return _typed(body, key, str) or ""


def stream_settings(body: Json) -> tuple[bool, bool]:
    """``(stream, include_usage)``; OpenAI streams only when asked (unlike the native API)."""
    options = _typed(body, "stream_options", dict) or {}
    return _flag(body, "stream"), bool(options.get("include_usage"))


def _stops(value: Any, *, strict: bool) -> list[str] | None:
    """``stop`` as a string or a list; non-strings are dropped (chat) or rejected (completions)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return None
    stops: list[str] = []
    for item in value:
        if isinstance(item, str):
            stops.append(item)
        elif strict:
            raise _bad(f"invalid type for 'stop' field: {go_type(item)}")
    return stops or None


def _set(options: Json, key: str, value: Any) -> None:
    if value is not None:
        options[key] = value


# --- chat request -------------------------------------------------------------------------


def think_from_effort(effort: Any) -> bool | str | None:
    """Native ``think`` for an OpenAI reasoning effort; None leaves the model's default."""
    if effort in (None, ""):
        return None
    if isinstance(effort, str) and effort in _EFFORT_TO_THINK:
        return _EFFORT_TO_THINK[effort]
    raise _bad(
        f'invalid reasoning value: "{effort}" (must be "minimal", "low", "medium", "high", '
        '"xhigh", "ultra", "max", or "none")'
    )


def _canonical_base64(text: str, message: str) -> str:
    """Strict standard base64 (CR/LF ignored, like Go), re-encoded for the native body."""
    try:
        raw = base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(message) from None
    return base64.b64encode(raw).decode("ascii")


def image_from_url(url: str) -> str:
    """A data URL's base64 payload; remote URLs are refused because the server never fetches."""
    if url.startswith(("http://", "https://")):
        raise _bad(_IMAGE_URLS_UNSUPPORTED)
    for prefix in _IMAGE_PREFIXES:
        if url.startswith(prefix):
            return _canonical_base64(url[len(prefix) :], "invalid image input")
    raise _bad("invalid image input")


def _part_to_message(role: str, part: Any) -> Json:
    """One content part → one native message (Ollama gives each part its own message)."""
    if not isinstance(part, dict):
        raise _bad("invalid message format")
    kind = part.get("type")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise _bad("invalid message format")
        return {"role": role, "content": part["text"]}
    if kind == "image_url":
        url = part.get("image_url")
        if isinstance(url, dict):
            url = url.get("url")
        if not isinstance(url, str):
            raise _bad("invalid message format")
        return {"role": role, "content": "", "images": [image_from_url(url)]}
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            raise _bad("invalid input_audio format")
        if not isinstance(audio.get("data"), str):
            raise _bad("invalid input_audio format: missing data")
        return {
            "role": role,
            "content": "",
            "images": [_canonical_base64(audio["data"], "invalid input_audio base64 data")],
        }
    raise _bad("invalid message format")


def _arguments(value: Any) -> Json:
    """OpenAI sends arguments as a JSON string; native wants the object."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _bad("invalid tool call arguments") from None
        if value is None:
            return {}
    if not isinstance(value, dict):
        raise _bad("invalid tool call arguments")
    return value


def from_tool_calls(calls: Any) -> list[Json]:
    """OpenAI ``tool_calls`` (string arguments) → native tool calls (object arguments)."""
    if not isinstance(calls, list):
        raise _bad(f"invalid type for 'tool_calls' field: {go_type(calls)}")
    native: list[Json] = []
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise _bad("invalid tool call format")
        entry: Json = {
            "function": {
                "index": index,
                "name": function.get("name") or "",
                "arguments": _arguments(function.get("arguments")),
            }
        }
        if call.get("id"):
            entry["id"] = call["id"]
        native.append(entry)
    return native


def _tool_name_for(call_id: str, messages: list[Any]) -> str:
    """The function name an earlier assistant call used for ``call_id`` (last one wins)."""
    for message in reversed(messages):
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict) and call.get("id") == call_id:
                return (call.get("function") or {}).get("name") or ""
    return ""


def _message_extras(message: Json, history: list[Any]) -> Json:
    """Reasoning, tool calls and the tool name/id that travel with a message's content."""
    extras: Json = {}
    if isinstance(message.get("reasoning"), str) and message["reasoning"]:
        extras["thinking"] = message["reasoning"]
    if message.get("tool_calls"):
        extras["tool_calls"] = from_tool_calls(message["tool_calls"])
    call_id = message.get("tool_call_id")
    if str(message.get("role", "")).lower() == "tool":
        name = message.get("name") or (_tool_name_for(call_id, history) if call_id else "")
        if name:
            extras["tool_name"] = name
    if call_id:
        extras["tool_call_id"] = call_id
    return extras


def _to_native_messages(message: Any, history: list[Any]) -> list[Json]:
    """One OpenAI message → native messages (several when the content has several parts)."""
    if not isinstance(message, dict):
        raise _bad("invalid message format")
    role = message.get("role")
    if not isinstance(role, str):
        raise _bad(f"invalid type for 'role' field: {go_type(role)}")
    content = message.get("content")
    extras = _message_extras(message, history)
    if isinstance(content, str):
        return [{"role": role, "content": content, **extras}]
    if isinstance(content, list):
        parts = [_part_to_message(role, part) for part in content]
        if not parts:
            return [{"role": role, "content": "", **extras}] if extras else []
        parts[-1].update(extras)  # the tool data belongs to the message, so to its last part
        return parts
    if content is None and message.get("tool_calls") is not None:
        return [{"role": role, "content": "", **extras}]
    raise _bad(f"invalid message content type: {go_type(content)}")


def _response_format(value: Any) -> Any:
    """``json_object`` → ``"json"``, ``json_schema`` → its schema, anything else → no format."""
    kind = str(value.get("type") or "").strip().lower()
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = value.get("json_schema")
        return schema.get("schema") if isinstance(schema, dict) else None
    return None


def _sampling_options(body: Json, *, strict_stop: bool) -> Json:
    """Options shared by chat and completions; OpenAI's temperature/top_p default to 1.0."""
    options: Json = {}
    _set(options, "stop", _stops(body.get("stop"), strict=strict_stop))
    max_tokens = _integer(body, "max_tokens")
    _set(
        options,
        "num_predict",
        max_tokens if max_tokens is not None else _integer(body, "max_completion_tokens"),
    )
    temperature = _number(body, "temperature")
    options["temperature"] = 1.0 if temperature is None else temperature
    _set(options, "seed", _integer(body, "seed"))
    return options


def from_chat_request(body: Json) -> Json:
    """An OpenAI chat completion request → the native ``/api/chat`` body."""
    messages = _typed(body, "messages", list)
    if not messages:
        raise _bad("[] is too short - 'messages'")
    native_messages = [m for message in messages for m in _to_native_messages(message, messages)]
    options = _sampling_options(body, strict_stop=False)
    _set(options, "frequency_penalty", _number(body, "frequency_penalty"))
    _set(options, "presence_penalty", _number(body, "presence_penalty"))
    top_p = _number(body, "top_p")
    options["top_p"] = 1.0 if top_p is None else top_p

    native: Json = {
        "model": _text(body, "model"),
        "messages": native_messages,
        "options": options,
        "stream": _flag(body, "stream"),
    }
    response_format = _typed(body, "response_format", dict)
    if response_format is not None:
        _set(native, "format", _response_format(response_format))
    tools = _typed(body, "tools", list)
    if tools:
        native["tools"] = tools
    # Passed through as they are: native chat checks them against the tools and enforces them.
    _set(native, "tool_choice", _typed(body, "tool_choice", str, dict))
    _set(native, "parallel_tool_calls", _typed(body, "parallel_tool_calls", bool))
    reasoning = _typed(body, "reasoning", dict) or {}
    _set(native, "think", think_from_effort(reasoning.get("effort") or body.get("reasoning_effort")))
    if _flag(body, "logprobs"):
        native["logprobs"] = True
    top_logprobs = _integer(body, "top_logprobs")
    if top_logprobs:
        native["top_logprobs"] = top_logprobs
    if _flag(body, "_debug_render_only"):
        native["_debug_render_only"] = True
    return native


# --- completion and embedding requests ----------------------------------------------------


def from_completion_request(body: Json) -> Json:
    """An OpenAI (legacy) completion request → the native ``/api/generate`` body.

    ``suffix`` is forwarded, so editors get fill-in-the-middle through the OpenAI API.
    """
    prompt = _typed(body, "prompt", str)
    options = _sampling_options(body, strict_stop=True)
    options["frequency_penalty"] = _number(body, "frequency_penalty") or 0.0
    options["presence_penalty"] = _number(body, "presence_penalty") or 0.0
    options["top_p"] = _number(body, "top_p") or 1.0  # 0 is "unset" here, as in Ollama

    native: Json = {
        "model": _text(body, "model"),
        "prompt": prompt or "",
        "options": options,
        "stream": _flag(body, "stream"),
    }
    suffix = _text(body, "suffix")
    if suffix:
        native["suffix"] = suffix
    logprobs = _integer(body, "logprobs")
    if logprobs is not None and logprobs > 0:
        native["logprobs"] = True
        native["top_logprobs"] = logprobs
    if _flag(body, "_debug_render_only"):
        native["_debug_render_only"] = True
    return native


def embedding_format(body: Json) -> str:
    """The validated ``encoding_format``, lowercased; ``float`` when absent."""
    value = body.get("encoding_format")
    if value in (None, ""):
        return "float"
    if isinstance(value, str) and value.lower() in ENCODING_FORMATS:
        return value.lower()
    raise _bad(f"Invalid value for 'encoding_format' = {value}. Supported values: ['float', 'base64'].")


def from_embedding_request(body: Json) -> Json:
    """An OpenAI embeddings request → the native ``/api/embed`` body."""
    embedding_format(body)
    value = body.get("input")
    if value == "":
        value = [""]
    if value is None or value == []:
        raise _bad("invalid input")
    if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
        raise _bad("invalid input type")
    native: Json = {"model": _text(body, "model"), "input": value}
    dimensions = _integer(body, "dimensions")
    if dimensions:
        native["dimensions"] = dimensions
    return native
