"""Native request bodies → the runtime's typed requests.

Each translator makes the checks Ollama makes while decoding (Go's unmarshal errors for a
field of the wrong JSON type, ``top_logprobs``' range) and fills a request of
:mod:`llamita.server.runtime.requests`; everything that needs the model is the runtime's.
``/v1`` builds a native body first (:mod:`.openai.request`) and comes through here too.
Also here: what else a request carries for the runtime (the runtime itself, the session).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request

from llamita.server.prompt.wire import (
    UnmarshalError,
    check_generate,
    check_messages,
    check_tools,
    unmarshal_error,
)
from llamita.server.runtime.errors import InvalidRequest
from llamita.server.runtime.generate import Runtime
from llamita.server.runtime.requests import ChatRequest, EmbedRequest, GenerateRequest

Json = dict[str, Any]
T = TypeVar("T")
SESSION_HEADER = "x-llamita-session"


def runtime_of(request: Request) -> Runtime:
    """The app's runtime (built in ``build_app``)."""
    return request.app.state.runtime


def session_of(request: Request) -> str | None:
    """The editor session a request belongs to: a newer request of it supersedes this one."""
    return request.headers.get(SESSION_HEADER)


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


def chat_request(body: Json) -> ChatRequest:
    messages = _typed(check_messages, body.get("messages"))
    tools = _typed(check_tools, body.get("tools")) or None
    return ChatRequest(**_common(body), messages=messages, tools=tools)


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
