"""The objects of ``/v1/responses`` replies: the response, its output items, usage, errors.

Shapes follow OpenAI's Responses API reference and Ollama's ``openai/responses.go``: a
response echoes the settings it ran with (the SDK and Codex read them back), its ``output``
holds a ``reasoning`` item (the thinking, as a summary and as reasoning text), a ``message``
item with one ``output_text`` part, and one ``function_call`` item per tool call.  Pure
functions over plain dicts; :mod:`.responses_stream` assembles them, streamed or not.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .response import openai_error

Json = dict[str, Any]

# A failure's HTTP status → the ``error.code`` of a ``response.failed`` event.
_FAILURE_CODES = {400: "invalid_prompt", 429: "rate_limit_exceeded", 503: "rate_limit_exceeded"}


def new_id(prefix: str) -> str:
    """A unique id (``resp_…``, ``msg_…``): a follow-up names its response by it."""
    return f"{prefix}_{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def usage_of(native: Json) -> Json:
    """Token counts of the native final chunk; OpenAI's input tokens include the cached ones
    (reasoning tokens are not counted apart from the rest of the output)."""
    cached = int(native.get("prompt_cache_tokens") or 0)
    prompt = int(native.get("prompt_eval_count") or 0) + cached
    output = int(native.get("eval_count") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + output,
    }


# --- output items -------------------------------------------------------------------------


def text_part(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str | None, status: str) -> Json:
    """An assistant message; ``text`` None while it is being streamed (no part yet)."""
    content = [] if text is None else [text_part(text)]
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def summary_part(text: str) -> Json:
    return {"type": "summary_text", "text": text}


def reasoning_item(item_id: str, text: str | None, status: str) -> Json:
    """The thinking, as the summary Codex and Ollama's clients show and as reasoning text."""
    item: Json = {"id": item_id, "type": "reasoning", "status": status, "summary": []}
    if text is not None:
        item["summary"] = [summary_part(text)]
        item["content"] = [{"type": "reasoning_text", "text": text}]
    return item


def function_call_item(item_id: str, call: Json, status: str, arguments: str | None = None) -> Json:
    """An OpenAI chat tool call (``response.to_tool_calls``) as a ``function_call`` item."""
    function = call["function"]
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call["id"],
        "name": function["name"],
        "arguments": function["arguments"] if arguments is None else arguments,
    }


def native_call(call: Json) -> Json:
    """The native form of an OpenAI chat tool call, as a stored conversation keeps it."""
    function = call["function"]
    return {
        "id": call["id"],
        "function": {"name": function["name"], "arguments": json.loads(function["arguments"])},
    }


# --- the response -------------------------------------------------------------------------


def response_object(
    settings: Json, response_id: str, created_at: int, status: str, output: list[Json]
) -> Json:
    """A response object; the caller sets ``usage``, ``error``, ``incomplete_details`` when known."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "completed_at": None,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "output": output,
        "usage": None,
        "background": False,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
        "top_logprobs": 0,
        "max_tool_calls": None,
        "safety_identifier": None,
        **settings,
    }


def finished(response: Json, native: Json) -> Json:
    """``response`` completed by the native final chunk: status, usage, incomplete details."""
    cut = native.get("done_reason") == "length"
    return {
        **response,
        "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "completed_at": now(),
        "usage": usage_of(native),
    }


def failed(response: Json, message: str, status: int) -> Json:
    code = "canceled" if status == 499 else _FAILURE_CODES.get(status, "server_error")
    return {**response, "status": "failed", "error": {"code": code, "message": message}}


# --- errors before the first byte ---------------------------------------------------------


def not_found(message: str, param: str | None = None, code: str | None = None) -> Json:
    body = openai_error(message, 404)
    body["error"].update(param=param, code=code)
    if param == "previous_response_id":
        body["error"]["type"] = "invalid_request_error"  # what OpenAI answers
    return body


def previous_not_found(response_id: str) -> Json:
    return not_found(
        f"Previous response with id '{response_id}' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )


def response_not_found(response_id: str) -> Json:
    return not_found(f"Response with id '{response_id}' not found.")
