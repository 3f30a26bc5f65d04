"""OpenAI Responses request bodies → native ``/api/chat`` bodies.

``POST /v1/responses`` has no inference path of its own: its ``input`` items become native chat
messages (a ``function_call`` an assistant tool call, a ``function_call_output`` a tool message,
a ``reasoning`` item the next assistant message's thinking), ``instructions`` a system message,
function ``tools`` native tools, and ``tool_choice``/``parallel_tool_calls`` the native extension
fields of the same names (OpenAI chat's shape), which the runtime enforces by grammar.  Built-in
tools (web search, file search, computer use …) are not offered to the model: a local server
cannot run them.  Defaults follow Ollama's ``openai/responses.go``.  Pure functions over plain
dicts; a bad request raises :class:`APIError` with status 400.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llamita.server.api.errors import APIError

from .request import _integer, _number, _typed, image_from_url, think_from_effort

Json = dict[str, Any]

_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
_TEXT_PARTS = ("input_text", "output_text", "text", "summary_text", "reasoning_text")
_TOOL_CHOICES = ("auto", "none", "required")
_TRUNCATION = {"auto": True, "disabled": False}
# Input items that record what a built-in tool did; the text that follows them carries the result.
_BUILTIN_CALLS = ("web_search_call", "file_search_call", "image_generation_call", "item_reference")


def _bad(message: str) -> APIError:
    return APIError(message, 400)


@dataclass(frozen=True)
class ResponsesCall:
    """A validated Responses request: what runs, what is echoed, what is kept."""

    native: Json  # the /api/chat body
    messages: list[Json]  # the conversation without the instructions (what a follow-up inherits)
    settings: Json  # the request fields a response object echoes
    stream: bool
    store: bool


def previous_response_id(body: Json) -> str | None:
    return _typed(body, "previous_response_id", str) or None


# --- input items --------------------------------------------------------------------------


def _content(content: Any, where: str) -> tuple[str, list[str]]:
    """A message's content (a string or parts) → its text and base64 images."""
    if isinstance(content, str):
        return content, []
    if content is None:
        return "", []
    if not isinstance(content, list):
        raise _bad(f"{where}: content must be a string or an array of content parts")
    text: list[str] = []
    images: list[str] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS:
            if not isinstance(part.get("text"), str):
                raise _bad(f"{where}.content[{index}]: 'text' must be a string")
            text.append(part["text"])
        elif kind == "refusal":
            text.append(str(part.get("refusal") or ""))
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise _bad(f"{where}.content[{index}]: only base64 data URLs are supported for input_image")
            images.append(image_from_url(url))
        elif kind == "input_file":
            raise _bad("file inputs are not currently supported")
        else:
            raise _bad(f"{where}.content[{index}]: unknown content type: {kind!r}")
    return "".join(text), images


def _arguments(value: Any, where: str) -> Json:
    """A call's ``arguments``: OpenAI sends a JSON string, native wants the object."""
    if value in (None, ""):
        return {}
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise _bad(f"{where}: 'arguments' is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _bad(f"{where}: 'arguments' must be a JSON object")
    return parsed


def _reasoning_text(item: Json) -> str:
    """The thinking a ``reasoning`` item carries back: its text, else its summary (ours has both)."""
    for key in ("content", "summary"):
        parts = item.get(key)
        if isinstance(parts, list):
            text = "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
            if text:
                return text
    return ""


class _Conversation:
    """Native messages built item by item: calls join the assistant message before them."""

    def __init__(self, history: list[Json]) -> None:
        self.messages: list[Json] = [dict(m) for m in history]
        self.thinking = ""  # from a reasoning item, for the next assistant message
        self.tool_names: dict[str, str] = {
            call["id"]: (call.get("function") or {}).get("name") or ""
            for m in history
            for call in m.get("tool_calls") or []
            if call.get("id")
        }

    def assistant(self) -> Json:
        """The assistant message a call or text joins: the last one, or a new one."""
        last = self.messages[-1] if self.messages else None
        if last is None or last["role"] != "assistant" or self.thinking:
            last = {"role": "assistant", "content": ""}
            self.messages.append(last)
        if self.thinking:
            last["thinking"], self.thinking = self.thinking, ""
        return last

    def add(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise _bad(f"{where}: an input item must be an object")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            self._message(item, where)
        elif kind == "function_call":
            self._call(item, where)
        elif kind == "function_call_output":
            self._output(item, where)
        elif kind == "reasoning":
            self.thinking += _reasoning_text(item)
        elif kind not in _BUILTIN_CALLS:
            raise _bad(f"{where}: unknown input item type: {kind!r}")

    def _message(self, item: Json, where: str) -> None:
        role = item.get("role")
        role = _ROLES.get(role) if isinstance(role, str) else None
        if role is None:
            raise _bad(f"{where}: role must be one of user, system, developer, assistant")
        text, images = _content(item.get("content"), where)
        if role == "assistant":
            message = self.assistant()
            if message["content"] and text:
                message["content"] += "\n"
            message["content"] += text
        else:
            message = {"role": role, "content": text}
            self.messages.append(message)
        if images:
            message.setdefault("images", []).extend(images)

    def _call(self, item: Json, where: str) -> None:
        call_id, name = item.get("call_id"), item.get("name")
        if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
            raise _bad(f"{where}: a function_call needs 'call_id' and 'name' strings")
        arguments = _arguments(item.get("arguments"), where)
        self.assistant().setdefault("tool_calls", []).append(
            {"id": call_id, "function": {"name": name, "arguments": arguments}}
        )
        self.tool_names[call_id] = name

    def _output(self, item: Json, where: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise _bad(f"{where}: a function_call_output needs a 'call_id' string")
        text, images = _content(item.get("output"), where)
        message: Json = {"role": "tool", "content": text, "tool_call_id": call_id}
        if self.tool_names.get(call_id):
            message["tool_name"] = self.tool_names[call_id]
        if images:
            message["images"] = images
        self.messages.append(message)

    def finish(self) -> list[Json]:
        if self.thinking:  # reasoning with nothing after it
            self.assistant()
        return self.messages


def _messages(body: Json, history: list[Json]) -> list[Json]:
    value = body.get("input")
    conversation = _Conversation(history)
    if isinstance(value, str):
        conversation.messages.append({"role": "user", "content": value})
    elif isinstance(value, list):
        for index, item in enumerate(value):
            conversation.add(item, f"input[{index}]")
    elif value is not None:
        raise _bad("'input' must be a string or an array of input items")
    messages = conversation.finish()
    if not messages:
        raise _bad("'input' is required")
    return messages


# --- tools, tool_choice, text format ------------------------------------------------------


def _function_tool(tool: Json, where: str, prefix: str = "") -> Json:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}: a function tool needs a 'name' string")
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _bad(f"{where}: 'parameters' must be a JSON schema object")
    function: Json = {"name": prefix + name, "parameters": parameters or {"type": "object", "properties": {}}}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tools(body: Json) -> list[Json]:
    """Function tools (a ``namespace`` expanded to ``namespace.member``) → native tools."""
    native: list[Json] = []
    for index, tool in enumerate(_typed(body, "tools", list) or []):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise _bad(f"{where}: a tool must be an object with a 'type'")
        if tool["type"] == "function":
            native.append(_function_tool(tool, where))
        elif tool["type"] == "namespace":
            prefix = f"{tool.get('name')}." if tool.get("name") else ""
            members = tool.get("tools") if isinstance(tool.get("tools"), list) else []
            native.extend(_function_tool(m, f"{where}.tools[{i}]", prefix) for i, m in enumerate(members))
        # any other type is a built-in tool the server cannot run: the model is not offered it
    return native


def _named(name: Any, tools: list[Json]) -> str:
    names = [t["function"]["name"] for t in tools]
    if not isinstance(name, str) or name not in names:
        raise _bad(f"tool_choice names {name!r}, which is not one of the function tools: {names}")
    return name


def _tool_choice(body: Json, tools: list[Json]) -> tuple[Any, list[Json]]:
    """Native ``tool_choice`` (OpenAI chat's shape) and the tools the model may use."""
    choice = body.get("tool_choice")
    if choice is None or choice in _TOOL_CHOICES:
        return choice, tools
    if not isinstance(choice, dict):
        raise _bad('tool_choice must be "auto", "none", "required" or an object')
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": _named(choice.get("name"), tools)}}, tools
    if kind == "allowed_tools":
        mode = choice.get("mode") or "auto"
        listed = choice.get("tools") if isinstance(choice.get("tools"), list) else []
        allowed = {_named(t.get("name") if isinstance(t, dict) else None, tools) for t in listed}
        if mode not in ("auto", "required"):
            raise _bad('tool_choice.mode must be "auto" or "required"')
        return mode, [t for t in tools if t["function"]["name"] in allowed]
    raise _bad(f"tool_choice of type {kind!r} is not supported (only function tools run locally)")


def _format(text: Json | None) -> Any:
    """``text.format``: json_schema → its schema, json_object → ``"json"``, text → none."""
    fmt = (text or {}).get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise _bad("text.format.schema must be a JSON schema object")
        return fmt["schema"]
    if kind == "json_object":
        return "json"
    if kind == "text":
        return None
    raise _bad('text.format.type must be "text", "json_object" or "json_schema"')


# --- the request --------------------------------------------------------------------------


def _options(body: Json) -> Json:
    options: Json = {}
    temperature = _number(body, "temperature")
    options["temperature"] = 1.0 if temperature is None else temperature
    top_p = _number(body, "top_p")
    if top_p is not None:
        options["top_p"] = top_p
    max_output = _integer(body, "max_output_tokens")
    if max_output is not None:
        options["num_predict"] = max_output
    return options


def _refuse_unsupported(body: Json) -> None:
    if _typed(body, "background", bool):
        raise _bad("background responses are not supported")
    if body.get("conversation") is not None:
        raise _bad("conversations are not supported; use previous_response_id")


def settings_of(body: Json) -> Json:
    """The request fields a response object echoes, with OpenAI's defaults."""
    reasoning = _typed(body, "reasoning", dict)
    text = _typed(body, "text", dict)
    temperature, top_p = _number(body, "temperature"), _number(body, "top_p")
    return {
        "model": _typed(body, "model", str) or "",
        "instructions": _typed(body, "instructions", str),
        "previous_response_id": previous_response_id(body),
        "tools": _typed(body, "tools", list) or [],
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": _typed(body, "parallel_tool_calls", bool) is not False,
        "temperature": 1.0 if temperature is None else temperature,
        "top_p": 1.0 if top_p is None else top_p,
        "max_output_tokens": _integer(body, "max_output_tokens"),
        "reasoning": {"effort": (reasoning or {}).get("effort"), "summary": (reasoning or {}).get("summary")},
        "text": {**(text or {}), "format": (text or {}).get("format") or {"type": "text"}},
        "truncation": _typed(body, "truncation", str) or "disabled",
        "store": _typed(body, "store", bool) is not False,
        "metadata": _typed(body, "metadata", dict) or {},
        "user": _typed(body, "user", str),
        "prompt_cache_key": _typed(body, "prompt_cache_key", str),
        "service_tier": _typed(body, "service_tier", str) or "default",
    }


def from_responses_request(body: Json, history: list[Json] | None = None) -> ResponsesCall:
    """A Responses request (continuing ``history``, the previous response's conversation)."""
    _refuse_unsupported(body)
    settings = settings_of(body)
    stream = bool(_typed(body, "stream", bool))
    messages = _messages(body, history or [])
    tool_choice, tools = _tool_choice(body, _tools(body))
    native: Json = {
        "model": settings["model"],
        "messages": [{"role": "system", "content": settings["instructions"]}, *messages]
        if settings["instructions"]
        else messages,
        "options": _options(body),
        "stream": stream,
    }
    if tools:
        native["tools"] = tools
    if tool_choice is not None:
        native["tool_choice"] = tool_choice
    if "parallel_tool_calls" in body and body["parallel_tool_calls"] is not None:
        native["parallel_tool_calls"] = settings["parallel_tool_calls"]
    fmt = _format(_typed(body, "text", dict))
    if fmt is not None:
        native["format"] = fmt
    think = think_from_effort((_typed(body, "reasoning", dict) or {}).get("effort"))
    if think is not None:
        native["think"] = think
    truncation = _typed(body, "truncation", str)
    if truncation is not None:
        if truncation not in _TRUNCATION:
            raise _bad('truncation must be "auto" or "disabled"')
        native["truncate"] = _TRUNCATION[truncation]
    return ResponsesCall(native, messages, settings, stream, settings["store"])
