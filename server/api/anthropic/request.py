"""Anthropic Messages bodies → the native ``/api/chat`` body.

``/v1/messages`` has no inference path of its own: the body is rewritten into a native chat
body and run by the code behind ``/api/chat``.  Pure functions over plain dicts, so the
contract is testable without a model.  A field of the wrong type, a missing required field
or a block llamita cannot honour is a 400 (Anthropic's ``invalid_request_error``); fields
llamita has no use for (``metadata``, ``cache_control``, ``service_tier``...) are ignored.

The mapping: ``system`` → a system message; each content block → native message fields
(``tool_use`` → the assistant's ``tool_calls``, ``tool_result`` → a ``tool`` message before
the user's text); ``max_tokens`` → ``num_predict``; ``stop_sequences`` → ``stop``;
``tools``/``tool_choice`` → native function tools and llamita's ``tool_choice`` /
``parallel_tool_calls``; ``thinking`` → ``think`` (a budget becomes a level).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from llamita.server.api.errors import APIError

Json = dict[str, Any]

# A thinking budget (tokens) → the native think level: below LOW_BUDGET "low", below
# MEDIUM_BUDGET "medium", else "high".  Anthropic's minimum budget is 1024.
LOW_BUDGET = 4096
MEDIUM_BUDGET = 16384
_EFFORTS: dict[str, str] = {"low": "low", "medium": "medium", "high": "high", "xhigh": "max", "max": "max"}
_ROLES = ("user", "assistant", "system")  # Claude Code sends system turns inside ``messages`` too
_TEXT_JOIN = "\n\n"  # between text blocks of one message (or of ``system``)


def _bad(message: str) -> APIError:
    return APIError(message, 400)


# --- field checks -------------------------------------------------------------------------


_KINDS: dict[str, tuple[type, ...]] = {
    "a string": (str,),
    "a boolean": (bool,),
    "an integer": (int,),
    "a number": (int, float),
    "an object": (dict,),
    "a list": (list,),
}


def _get(obj: Json, key: str, kind: str, where: str = "") -> Any:
    """``obj[key]`` when absent/null or of ``kind``; a bool is never a number."""
    value = obj.get(key)
    if value is None:
        return None
    types = _KINDS[kind]
    if kind == "an integer" and isinstance(value, float) and value.is_integer():
        return int(value)  # 5.0: JavaScript clients cannot tell it apart
    if isinstance(value, types) and (kind == "a boolean" or not isinstance(value, bool)):
        return value
    raise _bad(f"{where}{key}: Input should be {kind}")


def _required(obj: Json, key: str, kind: str, where: str = "") -> Any:
    value = _get(obj, key, kind, where)
    if value is None:
        raise _bad(f"{where}{key}: Field required")
    return value


def stream_of(body: Json) -> bool:
    """Anthropic streams only when asked."""
    return bool(_get(body, "stream", "a boolean"))


def stop_sequences(body: Json) -> list[str]:
    stops = _get(body, "stop_sequences", "a list") or []
    if not all(isinstance(s, str) for s in stops):
        raise _bad("stop_sequences: Input should be a list of strings")
    return [s for s in stops if s]


# --- content blocks -----------------------------------------------------------------------


def _text_of(block: Json, where: str) -> str:
    return _required(block, "text", "a string", where)


def _image_of(block: Json, where: str) -> str:
    """A base64 image's payload, re-encoded (the server never fetches a URL)."""
    source = _required(block, "source", "an object", where)
    if source.get("type") != "base64":
        raise _bad(f"{where}source: only base64 image sources are supported, not {source.get('type')!r}")
    data = _required(source, "data", "a string", f"{where}source.")
    try:
        raw = base64.b64decode(data.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{where}source.data: invalid base64 image data") from None
    return base64.b64encode(raw).decode("ascii")


def _tool_result(block: Json, where: str, names: dict[str, str]) -> Json:
    """A ``tool_result`` block → a native ``tool`` message (text and images of its content)."""
    call_id = _required(block, "tool_use_id", "a string", where)
    content = block.get("content")
    texts: list[str] = []
    images: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for i, part in enumerate(content):
            inner = f"{where}content.{i}."
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(_text_of(part, inner))
            elif kind == "image":
                images.append(_image_of(part, inner))
            else:
                raise _bad(f"{inner}type: unsupported tool_result content block {kind!r}")
    elif content is not None:
        raise _bad(f"{where}content: Input should be a string or a list of content blocks")
    text = _TEXT_JOIN.join(texts)
    if _get(block, "is_error", "a boolean", where):
        text = f"Error: {text}"
    message: Json = {"role": "tool", "content": text, "tool_call_id": call_id}
    if call_id in names:
        message["tool_name"] = names[call_id]
    if images:
        message["images"] = images
    return message


def _tool_call(block: Json, where: str) -> Json:
    call_id = _required(block, "id", "a string", where)
    name = _required(block, "name", "a string", where)
    arguments = _get(block, "input", "an object", where) or {}
    return {"id": call_id, "function": {"name": name, "arguments": arguments}}


def _blocks(content: Any, where: str) -> list[Json]:
    """A message's content as blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _bad(f"{where}content: Input should be a string or a list of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _bad(f"{where}content.{i}: Input should be a content block with a type")
    return content


def _message(message: Any, index: int, names: dict[str, str]) -> list[Json]:
    """One Anthropic message → native messages: its tool results first, then the message.

    ``names`` maps tool-use ids to tool names, filled by assistant messages for the results
    that follow them.
    """
    where = f"messages.{index}."
    if not isinstance(message, dict):
        raise _bad(f"messages.{index}: Input should be an object")
    role = _required(message, "role", "a string", where)
    if role not in _ROLES:
        raise _bad(f"{where}role: Input should be 'user', 'assistant' or 'system'")
    texts: list[str] = []
    thinking: list[str] = []
    images: list[str] = []
    calls: list[Json] = []
    results: list[Json] = []
    for i, block in enumerate(_blocks(message.get("content"), where)):
        inner = f"{where}content.{i}."
        kind = block["type"]
        if kind == "text":
            texts.append(_text_of(block, inner))
        elif kind == "image":
            images.append(_image_of(block, inner))
        elif kind == "tool_use" and role == "assistant":
            calls.append(_tool_call(block, inner))
            names[calls[-1]["id"]] = calls[-1]["function"]["name"]
        elif kind == "tool_result" and role == "user":
            results.append(_tool_result(block, inner, names))
        elif kind == "thinking" and role == "assistant":
            thinking.append(_required(block, "thinking", "a string", inner))
        elif kind == "redacted_thinking" and role == "assistant":
            continue  # an opaque block another server made: nothing to show the model
        else:
            raise _bad(f"{inner}type: unsupported content block {kind!r} in a {role} message")
    native: Json = {"role": role, "content": _TEXT_JOIN.join(texts)}
    if thinking:
        native["thinking"] = "".join(thinking)
    if images:
        native["images"] = images
    if calls:
        native["tool_calls"] = calls
    keep = bool(texts or thinking or images or calls or not results)
    return results + ([native] if keep else [])


def _system(body: Json) -> list[Json]:
    system = body.get("system")
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise _bad("system: Input should be a string or a list of text blocks")
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _bad(f"system.{i}: Input should be a text block")
        texts.append(_text_of(block, f"system.{i}."))
    return [{"role": "system", "content": _TEXT_JOIN.join(texts)}] if texts else []


def _messages(body: Json) -> list[Json]:
    messages = _required(body, "messages", "a list")
    if not messages:
        raise _bad("messages: at least one message is required")
    names: dict[str, str] = {}
    native = _system(body)
    for index, message in enumerate(messages):
        native += _message(message, index, names)
    return native


# --- tools, thinking ----------------------------------------------------------------------


def _tools(body: Json) -> list[Json]:
    """Custom tools → native function tools; Anthropic's server tools cannot run here."""
    tools = _get(body, "tools", "a list") or []
    native = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}."
        if not isinstance(tool, dict):
            raise _bad(f"tools.{i}: Input should be an object")
        kind = _get(tool, "type", "a string", where)
        if kind not in (None, "custom"):
            raise _bad(f"{where}type: tool type {kind!r} is not supported (only custom tools)")
        function: Json = {"name": _required(tool, "name", "a string", where)}
        description = _get(tool, "description", "a string", where)
        if description:
            function["description"] = description
        function["parameters"] = _required(tool, "input_schema", "an object", where)
        native.append({"type": "function", "function": function})
    return native


def _tool_choice(body: Json) -> Json:
    """Anthropic's ``tool_choice`` → the native ``tool_choice`` / ``parallel_tool_calls`` fields."""
    choice = _get(body, "tool_choice", "an object")
    if choice is None:
        return {}
    kind = _required(choice, "type", "a string", "tool_choice.")
    native: Json
    if kind == "auto":
        native = {"tool_choice": "auto"}
    elif kind == "any":
        native = {"tool_choice": "required"}
    elif kind == "tool":
        name = _required(choice, "name", "a string", "tool_choice.")
        native = {"tool_choice": {"type": "function", "function": {"name": name}}}
    elif kind == "none":
        return {"tool_choice": "none"}
    else:
        raise _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if _get(choice, "disable_parallel_tool_use", "a boolean", "tool_choice."):
        native["parallel_tool_calls"] = False
    return native


def think_of(body: Json) -> bool | str | None:
    """``thinking`` (or else ``output_config.effort``) → native ``think``; None: the model's default.

    ``adaptive`` (the model decides: Claude Code's default) thinks; a type this server does not
    know yet leaves the model's default rather than refusing a client newer than the server.
    """
    thinking = _get(body, "thinking", "an object")
    if thinking is not None:
        kind = _required(thinking, "type", "a string", "thinking.")
        if kind == "disabled":
            return False
        if kind == "enabled":
            budget = _required(thinking, "budget_tokens", "an integer", "thinking.")
            return "low" if budget < LOW_BUDGET else "medium" if budget < MEDIUM_BUDGET else "high"
        return True if kind in ("adaptive", "between_tools") else None
    config = _get(body, "output_config", "an object") or {}
    effort = _get(config, "effort", "a string", "output_config.")
    if effort is None:
        return None
    if effort not in _EFFORTS:
        raise _bad("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
    return _EFFORTS[effort]


def thinking_shown(body: Json) -> bool:
    """False for ``thinking.display: "omitted"``: thinking blocks then come without their text."""
    thinking = _get(body, "thinking", "an object") or {}
    return _get(thinking, "display", "a string", "thinking.") != "omitted"


def _format(body: Json) -> Json | None:
    """``output_config.format`` (a JSON schema) → the native ``format``."""
    config = _get(body, "output_config", "an object") or {}
    shape = _get(config, "format", "an object", "output_config.")
    if shape is None:
        return None
    if shape.get("type") != "json_schema":
        raise _bad("output_config.format.type: Input should be 'json_schema'")
    return _required(shape, "schema", "an object", "output_config.format.")


# --- bodies -------------------------------------------------------------------------------


def _options(body: Json) -> Json:
    options: Json = {}
    max_tokens = _required(body, "max_tokens", "an integer")
    if max_tokens < 1:
        raise _bad("max_tokens: Input should be greater than or equal to 1")
    options["num_predict"] = max_tokens
    for key, kind in (("temperature", "a number"), ("top_p", "a number"), ("top_k", "an integer")):
        value = _get(body, key, kind)
        if value is not None:
            options[key] = value
    stops = stop_sequences(body)
    if stops:
        options["stop"] = stops
    return options


def _base(body: Json) -> Json:
    """What a Messages body and a count_tokens body share."""
    _get(body, "metadata", "an object")
    native: Json = {"model": _required(body, "model", "a string"), "messages": _messages(body)}
    tools = _tools(body)
    if tools:
        native["tools"] = tools
    native.update(_tool_choice(body))
    think = think_of(body)
    if think is not None:
        native["think"] = think
    shape = _format(body)
    if shape is not None:
        native["format"] = shape
    return native


def from_messages_request(body: Json) -> Json:
    """A ``/v1/messages`` body → the native ``/api/chat`` body."""
    native = _base(body)
    native["options"] = _options(body)
    native["stream"] = stream_of(body)
    return native


def from_count_request(body: Json) -> Json:
    """A ``/v1/messages/count_tokens`` body → the native chat body whose prompt is counted.

    The whole conversation is counted: it is never cut to the context (``truncate: false``).
    """
    return {**_base(body), "truncate": False}
