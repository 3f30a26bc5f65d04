"""Native ``/api/chat`` chunks → an Anthropic message, Anthropic's stream events and errors.

The counterpart of :mod:`.request`: pure functions over plain dicts.  A message's content is
its thinking block (with a ``signature``: llamita signs nothing, so it is a digest of the
thinking text, which clients only echo back), its text block and one ``tool_use`` block per
tool call.  A stream is Anthropic's event sequence: ``message_start``, ``ping``, then per
block ``content_block_start`` / ``content_block_delta``... / ``content_block_stop`` with
increasing indexes, then ``message_delta`` (stop reason, usage) and ``message_stop``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

# Status → Anthropic's error type (anything else is an ``api_error``).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    499: "canceled",  # superseded by a newer request of the same session, or aborted
    529: "overloaded_error",
}
OVERLOADED = 529  # Anthropic's status for "overloaded": what our 503 (queue full) becomes


def error_status(status: int) -> int:
    return OVERLOADED if status == 503 else status


def anthropic_error(message: str, status: int) -> Json:
    """Anthropic's error body; the SDKs pick their exception class from the status."""
    kind = _ERROR_TYPES.get(error_status(status), "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def new_tool_use_id() -> str:
    return "toolu_" + secrets.token_hex(12)


def signature(thinking: str) -> str:
    """A thinking block's ``signature``: llamita has no key to sign with, so a digest."""
    return hashlib.sha256(thinking.encode()).hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def stop_reason(native: Json, stops: list[str], tool_use: bool) -> tuple[str, str | None]:
    """``(stop_reason, stop_sequence)`` of a finished native reply.

    ``done_reason`` ``length`` is ``max_tokens``; a tool call is ``tool_use``; a stop that
    the runtime attributes to one of the request's stop sequences (``stop_sequence`` on the
    done chunk, when it says) is ``stop_sequence``; any other stop is ``end_turn``.
    """
    if tool_use:
        return "tool_use", None
    if native.get("done_reason") == "length":
        return "max_tokens", None
    matched = native.get("stop_sequence")
    if isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    return "end_turn", None


def usage(native: Json) -> Json:
    """Anthropic's usage: tokens evaluated, tokens read from the prompt cache, tokens generated."""
    return {
        "input_tokens": int(native.get("prompt_eval_count") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": int(native.get("prompt_cache_tokens") or 0),
        "output_tokens": int(native.get("eval_count") or 0),
    }


def _tool_use_id(native_id: Any) -> str:
    """Anthropic's ``toolu_`` id for a native call id (the parser's ``call_...``), or a new one."""
    if not isinstance(native_id, str) or not native_id:
        return new_tool_use_id()
    return native_id if native_id.startswith("toolu_") else "toolu_" + native_id.removeprefix("call_")


def _tool_use(call: Json) -> Json:
    function = call.get("function") or {}
    return {
        "type": "tool_use",
        "id": _tool_use_id(call.get("id")),
        "name": function.get("name") or "",
        "input": function.get("arguments") or {},
    }


def to_message(
    native: Json, message_id: str, model: str, stops: list[str], show_thinking: bool = True
) -> Json:
    """A merged native chat reply → an Anthropic ``message`` object."""
    message = native.get("message") or {}
    content: list[Json] = []
    thinking = message.get("thinking") or ""
    if thinking:
        shown = thinking if show_thinking else ""
        content.append({"type": "thinking", "thinking": shown, "signature": signature(thinking)})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    content += [_tool_use(call) for call in message.get("tool_calls") or []]
    reason, sequence = stop_reason(native, stops, bool(message.get("tool_calls")))
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage(native),
    }


# --- streaming ----------------------------------------------------------------------------


@dataclass
class MessageStream:
    """What a stream remembers between native chunks."""

    id: str
    model: str
    stops: list[str] = field(default_factory=list)
    show_thinking: bool = True  # False: thinking blocks carry only their signature
    started: bool = False  # message_start sent
    index: int = -1  # of the last block started
    open: str | None = None  # the type of the block now open ("thinking" or "text")
    thinking: list[str] = field(default_factory=list)  # the open thinking block's text, to sign
    tool_use: bool = False


def _start_block(state: MessageStream, block: Json) -> Json:
    state.index += 1
    return {"type": "content_block_start", "index": state.index, "content_block": block}


def _delta(state: MessageStream, delta: Json) -> Json:
    return {"type": "content_block_delta", "index": state.index, "delta": delta}


def _close(state: MessageStream) -> list[Json]:
    """The events that end the open block (a thinking block gets its signature first)."""
    events: list[Json] = []
    if state.open == "thinking":
        events.append(
            _delta(state, {"type": "signature_delta", "signature": signature("".join(state.thinking))})
        )
        state.thinking = []
    if state.open is not None:
        events.append({"type": "content_block_stop", "index": state.index})
    state.open = None
    return events


def _text_events(state: MessageStream, kind: str, text: str) -> list[Json]:
    """A piece of thinking or text: into the open block of its kind, or a new one."""
    events: list[Json] = []
    if state.open != kind:
        events += _close(state)
        empty = (
            {"type": "thinking", "thinking": "", "signature": ""}
            if kind == "thinking"
            else {"type": "text", "text": ""}
        )
        events.append(_start_block(state, empty))
        state.open = kind
    if kind == "thinking":
        state.thinking.append(text)
        if state.show_thinking:
            events.append(_delta(state, {"type": "thinking_delta", "thinking": text}))
    else:
        events.append(_delta(state, {"type": "text_delta", "text": text}))
    return events


def _message_start(state: MessageStream) -> list[Json]:
    message = {
        "id": state.id,
        "type": "message",
        "role": "assistant",
        "model": state.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    return [{"type": "message_start", "message": message}, {"type": "ping"}]


def to_events(native: Json, state: MessageStream) -> list[Json]:
    """One native ``/api/chat`` chunk → the Anthropic stream events to send for it, in order."""
    events: list[Json] = []
    if not state.started:
        state.started = True
        events += _message_start(state)
    message = native.get("message") or {}
    if message.get("thinking"):
        events += _text_events(state, "thinking", message["thinking"])
    if message.get("content"):
        events += _text_events(state, "text", message["content"])
    for call in message.get("tool_calls") or []:
        events += _close(state)
        block = _tool_use(call)
        events.append(_start_block(state, {**block, "input": {}}))
        events.append(_delta(state, {"type": "input_json_delta", "partial_json": _json(block["input"])}))
        events.append({"type": "content_block_stop", "index": state.index})
        state.tool_use = True
    if native.get("done"):
        events += _close(state)
        reason, sequence = stop_reason(native, state.stops, state.tool_use)
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": usage(native),
            }
        )
        events.append({"type": "message_stop"})
    return events
