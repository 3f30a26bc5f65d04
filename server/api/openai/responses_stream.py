"""Native ``/api/chat`` chunks → Responses streaming events and the final response object.

One state machine serves both modes: streamed, each native chunk becomes its events as it
arrives; not streamed, every chunk goes through it and the reply is the final response (so a
response has one builder).  The event sequence follows OpenAI's Responses streaming reference:
``response.created``, ``response.in_progress``; per output item ``output_item.added`` … deltas …
``output_item.done`` (thinking as ``reasoning_summary_text`` deltas, as Ollama sends it; text
as ``output_text`` deltas inside a ``content_part``; each tool call as ``function_call_arguments``
delta and done); then ``response.completed`` (or ``response.incomplete`` when ``max_output_tokens``
cut it) with the whole response and usage.  Every event carries ``type`` and an increasing
``sequence_number``, and is framed with an ``event:`` line.  A failure after the first byte ends
the stream with ``response.failed`` (status ``failed``, ``error.code`` and ``message``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .response import to_tool_calls
from .responses_reply import (
    failed,
    finished,
    function_call_item,
    message_item,
    native_call,
    new_id,
    now,
    reasoning_item,
    response_object,
    summary_part,
    text_part,
)

Json = dict[str, Any]
OnDone = Callable[[Json, Json], None]  # (final response, native assistant message)


def frame(event: Json) -> bytes:
    """One SSE event: the ``event:`` line names the type (the SDK and Codex read either)."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


class ResponsesTurn:
    """What one response has produced so far, and the events that announce it."""

    def __init__(self, settings: Json, on_done: OnDone | None = None) -> None:
        self.settings = settings
        self.id = new_id("resp")
        self.created_at = now()
        self.on_done = on_done
        self.sequence = 0
        self.started = False
        self.items: list[Json] = []  # finished output items
        self.open: Json | None = None  # the reasoning or message item being streamed
        self.text = ""  # of the open item
        self.content = ""  # all message text, for the stored conversation
        self.thinking = ""
        self.calls: list[Json] = []  # OpenAI chat tool calls
        self.final: Json | None = None

    # --- events ---------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> Json:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _response(self, status: str) -> Json:
        output = list(self.items)
        if self.open is not None:
            output.append(self.open)
        return response_object(self.settings, self.id, self.created_at, status, output)

    def _where(self) -> Json:
        """Where a delta of the open item goes."""
        assert self.open is not None
        return {"item_id": self.open["id"], "output_index": len(self.items)}

    def _open(self, kind: str) -> list[Json]:
        """Close the open item unless it is a ``kind`` one; else open a new one, with its part."""
        if self.open is not None and self.open["type"] == kind:
            return []
        events = self._close()
        if kind == "reasoning":
            self.open, part = reasoning_item(new_id("rs"), None, "in_progress"), "reasoning_summary_part"
            index, empty = {"summary_index": 0}, summary_part("")
        else:
            self.open, part = message_item(new_id("msg"), None, "in_progress"), "content_part"
            index, empty = {"content_index": 0}, text_part("")
        self.text = ""
        return [
            *events,
            self._event("response.output_item.added", output_index=len(self.items), item=self.open),
            self._event(f"response.{part}.added", **self._where(), **index, part=empty),
        ]

    def _close(self) -> list[Json]:
        """The events that finish the open item (reasoning or message), if any."""
        if self.open is None:
            return []
        item, text, where, index = self.open, self.text, self._where(), len(self.items)
        self.open = None
        if item["type"] == "reasoning":
            done = reasoning_item(item["id"], text, "completed")
            events = [
                self._event("response.reasoning_summary_text.done", **where, summary_index=0, text=text),
                self._event(
                    "response.reasoning_summary_part.done", **where, summary_index=0, part=summary_part(text)
                ),
            ]
        else:
            done = message_item(item["id"], text, "completed")
            events = [
                self._event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]),
                self._event("response.content_part.done", **where, content_index=0, part=text_part(text)),
            ]
        self.items.append(done)
        return [*events, self._event("response.output_item.done", output_index=index, item=done)]

    def _thinking(self, delta: str) -> list[Json]:
        events = self._open("reasoning")
        self.text += delta
        self.thinking += delta
        kind = "response.reasoning_summary_text.delta"
        return [*events, self._event(kind, **self._where(), summary_index=0, delta=delta)]

    def _content(self, delta: str) -> list[Json]:
        events = self._open("message")
        self.text += delta
        self.content += delta
        kind = "response.output_text.delta"
        return [*events, self._event(kind, **self._where(), content_index=0, delta=delta, logprobs=[])]

    def _calls(self, native_calls: Any) -> list[Json]:
        events = self._close()
        for call in to_tool_calls(native_calls):
            item_id, index = new_id("fc"), len(self.items)
            arguments = call["function"]["arguments"]
            where = {"item_id": item_id, "output_index": index}
            done = function_call_item(item_id, call, "completed")
            events += [
                self._event(
                    "response.output_item.added",
                    output_index=index,
                    item=function_call_item(item_id, call, "in_progress", ""),
                ),
                self._event("response.function_call_arguments.delta", **where, delta=arguments),
                self._event(
                    "response.function_call_arguments.done",
                    **where,
                    name=call["function"]["name"],
                    arguments=arguments,
                ),
                self._event("response.output_item.done", output_index=index, item=done),
            ]
            self.items.append(done)
            self.calls.append(call)
        return events

    # --- the native chunks ----------------------------------------------------------------

    def translate(self, native: Json) -> list[Json]:
        """One native chat chunk → the events to send for it, in order."""
        events: list[Json] = []
        if not self.started:
            self.started = True
            events.append(self._event("response.created", response=self._response("in_progress")))
            events.append(self._event("response.in_progress", response=self._response("in_progress")))
        message = native.get("message") or {}
        if message.get("thinking"):
            events += self._thinking(message["thinking"])
        if message.get("content"):
            events += self._content(message["content"])
        if message.get("tool_calls"):
            events += self._calls(message["tool_calls"])
        if native.get("done"):
            events += self._close()
            self.final = finished(self._response("completed"), native)
            kind = "response.incomplete" if self.final["status"] == "incomplete" else "response.completed"
            events.append(self._event(kind, response=self.final))
            if self.on_done is not None:
                self.on_done(self.final, self.assistant_message())
        return events

    def replay(self, chunks: Iterable[Json]) -> Json:
        """The final response of a whole (not streamed) reply."""
        for chunk in chunks:
            self.translate(chunk)
        if self.final is None:
            raise RuntimeError("the model's reply ended without a final chunk")
        return self.final

    def failed(self, message: str, status: int) -> Json:
        """The last event of a stream that failed after its first byte."""
        return self._event("response.failed", response=failed(self._response("failed"), message, status))

    def assistant_message(self) -> Json:
        """What the model said, as the native assistant message a follow-up's history holds."""
        message: Json = {"role": "assistant", "content": self.content}
        if self.thinking:
            message["thinking"] = self.thinking
        if self.calls:
            message["tool_calls"] = [native_call(call) for call in self.calls]
        return message
