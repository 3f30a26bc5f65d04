"""Go's type checks for the fields of a generate/chat request (messages, tools, context).

Ollama decodes a request into typed structs (``api.Message``, ``api.Tool``, ``api.ToolCall``),
so a field of the wrong JSON type is a 400 with Go's ``UnmarshalTypeError`` text before anything
runs.  llamita keeps the body as plain JSON, and the template conversion, the tool-call parser
and the engine assume those types, so they are checked here, once, with Go's messages.  Only
types are checked, as Go's decoder does: unknown keys pass and nothing is required.  The body
itself was decoded by :mod:`godecode` (Go's number, nesting and surrogate rules) in ``read_json``.
"""

from __future__ import annotations

from typing import Any

from llamita.server.gocompat.decode import FieldTypeError, UnmarshalError, check_value, go_kind

Json = dict[str, Any]


def unmarshal_error(value: Any, struct: str, path: str, go_type: str) -> UnmarshalError:
    """Go's ``json: cannot unmarshal X into Go struct field Struct.path of type T``."""
    return FieldTypeError(value, f"{struct}.{path}", go_type)


# ---- /api/generate -------------------------------------------------------------------------
def check_generate(body: Json) -> list[int]:
    """The text, image and ``context`` fields of a generate request; returns ``context``.

    Context ids are range-checked once the model (its vocabulary size) is loaded.
    """
    for key in ("prompt", "suffix", "system", "template"):
        _check_string(body, key, "GenerateRequest", "")
    _check_strings(body, "images", "GenerateRequest", "", "api.ImageData")
    context = body.get("context")
    if context is None:
        return []
    if not isinstance(context, list):
        raise unmarshal_error(context, "GenerateRequest", "context", "[]int")
    for token in context:
        if isinstance(token, bool) or not isinstance(token, int):
            raise unmarshal_error(token, "GenerateRequest", "context", "int")
    return context


# ---- /api/chat -----------------------------------------------------------------------------
_MESSAGE_STRINGS = ("role", "content", "thinking", "tool_name", "tool_call_id")


def check_messages(messages: Any) -> list[Json]:
    """``messages`` as Go's ``[]api.Message`` decodes them: role lowercased, content never null."""
    if messages is None:
        return []
    if not isinstance(messages, list):
        raise unmarshal_error(messages, "ChatRequest", "messages", "[]api.Message")
    out = []
    for message in messages:
        if not isinstance(message, dict):
            raise unmarshal_error(message, "ChatRequest", "messages", "api.Message")
        for key in _MESSAGE_STRINGS:
            _check_string(message, key, "Message", "messages")
        _check_strings(message, "images", "Message", "messages", "api.ImageData")
        check_tool_calls(message.get("tool_calls"))
        out.append(
            {**message, "role": (message.get("role") or "").lower(), "content": message.get("content") or ""}
        )
    return out


def check_tools(tools: Any) -> list[Json]:
    """A request's ``tools`` as Ollama's ``api.Tools`` decodes them, else :class:`UnmarshalError`.

    Only the types matter (as for Go's decoder): unknown keys are kept, nothing is required.
    """
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise unmarshal_error(tools, "ChatRequest", "tools", "api.Tools")
    for tool in tools:
        if not isinstance(tool, dict):
            raise unmarshal_error(tool, "ChatRequest", "tools", "api.Tool")
        _check_string(tool, "type", "Tool", "tools")
        function = tool.get("function")
        if function is None:
            continue
        if not isinstance(function, dict):
            raise unmarshal_error(function, "Tool", "tools.function", "api.ToolFunction")
        for key in ("name", "description"):
            _check_string(function, key, "ToolFunction", "tools.function")
        _check_parameters(function.get("parameters"))
    return tools


def _field(struct: str, path: str, key: str) -> str:
    """``Struct.path.key`` as Go names a field in its error (no leading dot for a top-level key)."""
    return f"{struct}." + f"{path}.{key}".lstrip(".")


def _check_string(obj: Json, key: str, struct: str, path: str) -> None:
    check_value(obj.get(key), "string", _field(struct, path, key))


def _check_strings(obj: Json, key: str, struct: str, path: str, item_type: str = "string") -> None:
    """A list of strings (``[]string``, or ``[]api.ImageData``: base64 text)."""
    check_value(obj.get(key), f"[]{item_type}", _field(struct, path, key))


def _check_parameters(params: Any) -> None:
    path = "tools.function.parameters"
    if params is None:
        return
    if not isinstance(params, dict):
        raise unmarshal_error(params, "ToolFunction", path, "api.ToolFunctionParameters")
    _check_string(params, "type", "ToolFunctionParameters", path)
    _check_strings(params, "required", "ToolFunctionParameters", path)
    pending = [(params.get("properties"), "ToolFunctionParameters", f"{path}.properties")]
    while pending:  # properties nest (objects, anyOf): walked without recursion
        props, struct, where = pending.pop()
        if props is None:
            continue
        if not isinstance(props, dict):
            raise unmarshal_error(props, struct, where, "map[string]api.ToolProperty")
        for prop in props.values():
            pending += _check_property(prop, where)


def _check_property(prop: Any, path: str) -> list[tuple[Any, str, str]]:
    """Check one ``api.ToolProperty``; returns its nested property maps to check next."""
    if not isinstance(prop, dict):
        raise unmarshal_error(prop, "ToolProperty", path, "api.ToolProperty")
    kind = prop.get("type")
    strings = isinstance(kind, list) and all(isinstance(k, str) for k in kind)
    if kind is not None and not isinstance(kind, str) and not strings:
        raise UnmarshalError(f"json: cannot unmarshal {go_kind(kind)} into Go value of type []string")
    _check_string(prop, "description", "ToolProperty", path)
    _check_strings(prop, "required", "ToolProperty", path)
    enum = prop.get("enum")
    if enum is not None and not isinstance(enum, list):
        raise unmarshal_error(enum, "ToolProperty", f"{path}.enum", "[]interface {}")
    nested: list[tuple[Any, str, str]] = [(prop.get("properties"), "ToolProperty", f"{path}.properties")]
    any_of = prop.get("anyOf")
    if any_of is not None:
        if not isinstance(any_of, list):
            raise unmarshal_error(any_of, "ToolProperty", f"{path}.anyOf", "[]api.ToolProperty")
        nested.append(({str(i): p for i, p in enumerate(any_of)}, "ToolProperty", f"{path}.anyOf"))
    return nested


def check_tool_calls(calls: Any) -> list[Json]:
    """A message's ``tool_calls`` as Ollama's ``[]api.ToolCall`` decodes them, else UnmarshalError."""
    path = "messages.tool_calls"
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise unmarshal_error(calls, "Message", path, "[]api.ToolCall")
    for call in calls:
        if not isinstance(call, dict):
            raise unmarshal_error(call, "Message", path, "api.ToolCall")
        _check_string(call, "id", "ToolCall", path)
        function = call.get("function")
        if function is None:
            continue
        if not isinstance(function, dict):
            raise unmarshal_error(function, "ToolCall", f"{path}.function", "api.ToolCallFunction")
        index = function.get("index")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise unmarshal_error(index, "ToolCallFunction", f"{path}.function.index", "int")
        _check_string(function, "name", "ToolCallFunction", f"{path}.function")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            raise unmarshal_error(
                arguments, "ToolCallFunction", f"{path}.function.arguments", "api.ToolCallFunctionArguments"
            )
    return calls
