"""Native request bodies → the runtime's typed requests.

Each translator makes the checks Ollama makes while decoding (Go's unmarshal errors for a
field of the wrong JSON type, ``top_logprobs``' range) and fills a request of
:mod:`llamita.server.runtime.requests`; everything that needs the model is the runtime's.
``/v1`` builds a native body first (:mod:`.openai.request`) and comes through here too.
Also here, for every handler: the JSON body read with Go's rules (``read_json``, ``typed_body``)
and what a request carries (the store, the runtime, the editor session).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request

from llamita.server.gocompat import decode as godecode
from llamita.server.prompt.tools import tool_names
from llamita.server.prompt.wire import (
    UnmarshalError,
    check_generate,
    check_messages,
    check_tools,
    unmarshal_error,
)
from llamita.server.runtime.errors import InvalidRequest
from llamita.server.runtime.generate import Runtime
from llamita.server.runtime.kinds import PRIORITIES
from llamita.server.runtime.requests import ChatRequest, EmbedRequest, GenerateRequest
from llamita.server.store.blobs import Store

from .auth import OWNER
from .errors import APIError

Json = dict[str, Any]
T = TypeVar("T")
SESSION_HEADER = "x-llamita-session"
PRIORITY_HEADER = "x-llamita-priority"


def store_of(request: Request) -> Store:
    return request.app.state.store


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object body, with Ollama's errors for empty or malformed input.

    Decoded by :mod:`gocompat.decode` (Go's rules: no NaN/Infinity, numbers within float64, bounded
    nesting, lone surrogates replaced), so every handler gets a value it can safely use.
    """
    raw = await request.body()
    if not raw.strip():
        raise APIError("missing request body", 400)
    try:
        body = godecode.decode(raw)
    except godecode.BodyError as e:
        raise APIError(f"invalid JSON body: {e}", 400) from e
    if body is None:
        return {}
    if not isinstance(body, dict):
        kind = godecode.go_kind(body)
        raise APIError(f"json: cannot unmarshal {kind} into Go value of type api.Request", 400)
    return body


def typed_body(body: dict[str, Any], struct: str, fields: dict[str, str]) -> dict[str, Any]:
    """``body`` after Go's field-type check: a field of the wrong JSON kind is a 400."""
    try:
        godecode.check_struct(body, struct, fields)
    except godecode.FieldTypeError as e:
        raise APIError(str(e), 400) from e
    return body


def runtime_of(request: Request) -> Runtime:
    """The app's runtime (built in ``build_app``)."""
    return request.app.state.runtime


def session_of(request: Request) -> str | None:
    """The editor session a request belongs to: a newer request of it supersedes this one."""
    return request.headers.get(SESSION_HEADER)


def owner_of(request: Request) -> str | None:
    """The name of the API key the request came with (usage and fair sharing count by it)."""
    return request.scope.get(OWNER)


def priority_of(request: Request) -> str | None:
    """The class the caller gives its request (``interactive``, ``normal``, ``batch``), if any."""
    value = request.headers.get(PRIORITY_HEADER)
    if value is None:
        return None
    value = value.strip().lower()
    if value not in PRIORITIES:
        raise InvalidRequest(f"X-Llamita-Priority must be one of {', '.join(PRIORITIES)}, not {value!r}")
    return value


def _typed(check: Callable[[Any], T], value: Any) -> T:
    """A :mod:`prompt.wire` check, its failure as a refusal."""
    try:
        return check(value)
    except UnmarshalError as e:
        raise InvalidRequest(str(e)) from e


def _top_logprobs(body: Json) -> int:
    top = body.get("top_logprobs")
    if top is not None and not (isinstance(top, int) and 0 <= top <= 20):
        raise InvalidRequest("top_logprobs must be between 0 and 20")
    return int(top or 0)


def _common(body: Json) -> Json:
    """The fields generate and chat share."""
    return {
        "model": body.get("model") or "",
        "keep_alive": body.get("keep_alive"),
        "think": body.get("think"),
        "format": body.get("format"),
        "options": body.get("options"),
        "logprobs": bool(body.get("logprobs")),
        "top_logprobs": _top_logprobs(body),
        "shift": body.get("shift", True) is not False,
        "truncate": body.get("truncate", True) is not False,
        "debug_render_only": bool(body.get("_debug_render_only")),
    }


def generate_request(body: Json) -> GenerateRequest:
    context = _typed(check_generate, body)
    return GenerateRequest(
        **_common(body),
        prompt=body.get("prompt") or "",
        suffix=body.get("suffix") or "",
        system=body.get("system") or "",
        template=body.get("template") or "",
        context=list(context),
        raw=bool(body.get("raw")),
        images=list(body.get("images") or []),
    )


TOOL_CHOICES = ("auto", "none", "required")
TOOL_CHOICE_SHAPE = (
    'tool_choice must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}'
)


def _tool_choice(body: Json, tools: list[Json] | None) -> tuple[str, str]:
    """llamita's ``tool_choice`` (OpenAI chat's shape) → ``(choice, forced tool name)``.

    Forcing a call needs tools to call, and a named function must be one of them.
    """
    value = body.get("tool_choice")
    if value is None:
        return "auto", ""
    if isinstance(value, str):
        if value not in TOOL_CHOICES:
            raise InvalidRequest(f"{TOOL_CHOICE_SHAPE}, not {value!r}")
        if value == "required" and not tools:
            raise InvalidRequest('tool_choice "required" needs at least one tool in tools')
        return value, ""
    if not isinstance(value, dict) or value.get("type", "function") != "function":
        raise InvalidRequest(TOOL_CHOICE_SHAPE)
    function = value.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidRequest(TOOL_CHOICE_SHAPE)
    if name not in tool_names(tools or []):
        raise InvalidRequest(f"tool_choice names the function {name!r}, which is not among tools")
    return "function", name


def _parallel_tool_calls(body: Json) -> bool:
    value = body.get("parallel_tool_calls")
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest("parallel_tool_calls must be true or false")
    return value is not False


def chat_request(body: Json) -> ChatRequest:
    messages = _typed(check_messages, body.get("messages"))
    tools = _typed(check_tools, body.get("tools")) or None
    choice, forced = _tool_choice(body, tools)
    return ChatRequest(
        **_common(body),
        messages=messages,
        tools=tools,
        tool_choice=choice,
        forced_tool=forced,
        parallel_tool_calls=_parallel_tool_calls(body),
    )


def embed_request(body: Json, *, legacy: bool = False) -> EmbedRequest:
    """``/api/embed`` (``input``: a string or strings) or, ``legacy``, ``/api/embeddings`` (``prompt``)."""
    prompt = body.get("prompt")
    if legacy and prompt is not None and not isinstance(prompt, str):
        raise InvalidRequest(str(unmarshal_error(prompt, "EmbeddingRequest", "prompt", "string")))
    model = body.get("model") or ""
    if legacy and not model:
        raise InvalidRequest("model is required")
    return EmbedRequest(
        model=model,
        inputs=prompt if legacy else body.get("input"),
        legacy=legacy,
        keep_alive=body.get("keep_alive"),
        options=body.get("options"),
        truncate=body.get("truncate", True) is not False,
        dimensions=body.get("dimensions"),
    )


def wants_stream(body: Json) -> bool:
    """Ollama streams unless told ``"stream": false``."""
    return body.get("stream") is not False
