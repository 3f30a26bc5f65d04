"""What one ``llamita run`` sends: the session state (Ollama's runOptions) and the streamed
turns over ``/api/generate`` (one-shot) and ``/api/chat`` (each REPL turn).

Everything goes through a :class:`RunClient` (the real HTTP client, or a fake in tests).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from llamita.server.client import ResponseError
from llamita.server.gocompat.fmt import quote
from llamita.server.gocompat.time import duration_string
from llamita.server.store.names import parse_name

from .commands import CommandError
from .term import Console, ResponsePrinter, summary

Message = dict[str, Any]
Chunk = dict[str, Any]


class RunClient(Protocol):
    """What ``run`` needs from a client (the real one, or a fake in tests)."""

    def show(self, model: str, verbose: bool = False) -> dict[str, Any]: ...
    def show_session(self, model: str, system: str, options: dict[str, Any]) -> dict[str, Any]: ...
    def generate(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]: ...
    def chat(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]: ...
    def create(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...
    def embed(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def list(self) -> list[dict[str, Any]]: ...
    def pull(self, model: str, insecure: bool = False) -> Iterator[dict[str, Any]]: ...


def keep_alive_json(seconds: float) -> str | int:
    """api.Duration's JSON: negative is ``-1``, anything else its Go duration string."""
    if seconds < 0:
        return -1
    return duration_string(round(seconds * 1e9))


def format_field(fmt: str) -> Any:
    """The request ``format`` for a ``--format`` value: "json" is quoted, anything else is raw JSON."""
    if not fmt:
        return None
    if fmt == "json":
        return "json"
    try:
        return json.loads(fmt)
    except ValueError as e:
        raise CommandError(f"invalid format {quote(fmt)}: {e}") from e


@dataclass
class Session:
    """Ollama's runOptions: everything a run (and each REPL turn) sends."""

    model: str
    parent_model: str = ""
    loaded_messages: list[Message] = field(default_factory=list)
    prompt: str = ""
    messages: list[Message] = field(default_factory=list)
    word_wrap: bool = True
    format: str = ""
    system: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: float | None = None
    think: bool | str | None = None
    hide_thinking: bool = False
    verbose: bool = False

    def copy(self) -> Session:
        return copy.deepcopy(self)

    def apply_show(self, info: dict[str, Any]) -> None:
        """Remember the parent (for /save) and the Modelfile's MESSAGEs (printed, and saved)."""
        self.parent_model = (info.get("details") or {}).get("parent_model", "") or ""
        self.loaded_messages = list(info.get("messages") or [])

    def _common(self, body: dict[str, Any]) -> dict[str, Any]:
        fmt = format_field(self.format)
        if fmt is not None:
            body["format"] = fmt
        if self.options:
            body["options"] = dict(self.options)
        if self.keep_alive is not None:
            body["keep_alive"] = keep_alive_json(self.keep_alive)
        if self.think is not None:
            body["think"] = self.think
        return body

    def chat_request(self) -> dict[str, Any]:
        return self._common({"model": self.model, "messages": list(self.messages)})

    def generate_request(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "prompt": self.prompt}
        if self.system:
            body["system"] = self.system
        return self._common(body)

    def load_request(self) -> dict[str, Any]:
        """Empty prompt: the server loads the model and answers ``done_reason: "load"``."""
        body: dict[str, Any] = {"model": self.model, "prompt": ""}
        if self.keep_alive is not None:
            body["keep_alive"] = keep_alive_json(self.keep_alive)
        if self.think is not None:
            body["think"] = self.think
        return body

    def create_request(self, name: str) -> dict[str, Any]:
        """``/save``: a new model FROM the parent (or this model) carrying the session's state."""
        parent = self.parent_model
        if parent and (not parse_name(parent).is_valid or parent.lower().endswith(".gguf")):  # a file
            parent = ""
        request: dict[str, Any] = {"model": name, "from": parent or self.model}
        if self.system:
            request["system"] = self.system
        if self.options:
            request["parameters"] = dict(self.options)
        messages = [*self.loaded_messages, *self.messages]
        if messages:
            request["messages"] = messages
        return request


def infer_think(capabilities: list[str], current: bool | str | None, explicit: bool) -> bool | str | None:
    """A user's choice wins; otherwise thinking models think and others leave ``think`` unset."""
    if explicit:
        return current
    return True if "thinking" in capabilities else None


def load_model(client: RunClient, session: Session) -> None:
    """Ollama's loadOrUnloadModel: check the model, then an empty generate to (un)load it."""
    client.show(session.model)
    for _ in client.generate(session.load_request()):
        pass


def _play(
    stream: Iterator[Chunk], printer: ResponsePrinter, parts: Callable[[Chunk], tuple[str, str, list[Any]]]
) -> list[Chunk] | None:
    """Print every chunk of a stream; the chunks, or None when the user pressed Ctrl+C."""
    chunks: list[Chunk] = []
    try:
        for chunk in stream:
            chunks.append(chunk)
            thinking, content, tool_calls = parts(chunk)
            printer.feed(thinking, content, tool_calls)
    except KeyboardInterrupt:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        return None
    return chunks


def _chat_parts(chunk: Chunk) -> tuple[str, str, list[Any]]:
    message = chunk.get("message") or {}
    return message.get("thinking", ""), message.get("content", ""), message.get("tool_calls") or []


def _generate_parts(chunk: Chunk) -> tuple[str, str, list[Any]]:
    return chunk.get("thinking", ""), chunk.get("response", ""), chunk.get("tool_calls") or []


def _stats(console: Console, last: Chunk) -> None:
    console.err.write(summary(last))
    console.err.flush()


def stream_chat(client: RunClient, session: Session, console: Console) -> Message | None:
    """One REPL turn over ``/api/chat``; returns the assistant message to keep, or None."""
    plain = not console.tty
    printer = ResponsePrinter(console, session.word_wrap, session.hide_thinking, plain, tools_first=True)
    stream = client.chat(session.chat_request())
    try:
        chunks = _play(stream, printer, _chat_parts)
    except ResponseError as e:
        if "upstream error" in str(e):
            console.say("An error occurred while processing your message. Please try again.")
            console.say()
            return None
        raise
    if chunks is None:
        console.write("\n")
        return None
    if session.messages:
        console.write("\n\n")
    if session.verbose:
        _stats(console, chunks[-1] if chunks else {})
    messages = [chunk.get("message") or {} for chunk in chunks]
    role = next((m["role"] for m in reversed(messages) if "role" in m), "assistant")
    reply: Message = {"role": role, "content": "".join(m.get("content", "") for m in messages)}
    if printer.thinking_text:
        reply["thinking"] = printer.thinking_text
    return reply


def stream_generate(client: RunClient, session: Session, console: Console) -> None:
    """The one-shot path over ``/api/generate``, followed by a blank line as Ollama prints."""
    printer = ResponsePrinter(console, session.word_wrap, session.hide_thinking, plain=not console.tty)
    chunks = _play(client.generate(session.generate_request()), printer, _generate_parts)
    if chunks is None:
        return
    if session.prompt:
        console.write("\n\n")
    if chunks and chunks[-1].get("done") and session.verbose:
        _stats(console, chunks[-1])
