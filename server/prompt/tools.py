"""Tool-call parsing for ``/api/chat``: turn what a model writes into Ollama ``tool_calls``.

A model calls a tool by writing the same syntax its chat template uses to replay earlier calls,
so the syntax is read from the template rather than hard-coded per family, as Ollama's
``tools.NewParser`` does. The first text inside ``{{ if .ToolCalls }}`` (up to any ``{``) is the
*tag*: ``<tool_call>`` for Qwen/Hermes, ``[TOOL_CALLS] [`` for Mistral, ``<|python_tag|>`` in
some Llama templates. A template with no such text (Llama 3.x writes bare JSON) gets the tag
``{``: a reply that *starts* with a JSON object or list may be calls, any other reply is prose.

Text arrives a token at a time, so :class:`ToolParser` works incrementally: text that may still
become a call (a partial tag, an unfinished JSON object) is held back until it is decided, and
everything else is released as content at once. A call is a JSON object ``{"name": <a tool of
the request>, "arguments" | "parameters": {...}}`` (also ``{"function": {...}}`` and
``{"<tool>": {...}}``); lists and separators between calls (``,`` ``;`` ``[`` ``]``), a repeated
tag and the template's closing text (``</tool_call>``) are markup and are dropped.

Deliberate differences from Ollama, which trusts the tag more:

- what turns out not to be a call (unknown tool, malformed JSON, no JSON after the tag) comes
  back as content, tag included; Ollama drops everything that follows a tag;
- the object's own ``name`` must be a requested tool (Ollama takes a tool name found anywhere
  in the text and pairs it with the first JSON object);
- a call without arguments gets ``{}`` (Ollama ignores it);
- an opening ``[`` at the end of the tag is treated as markup, so Mistral's ``[TOOL_CALLS][``
  matches the tag ``[TOOL_CALLS] [`` of its template;
- prose after the calls is content; Ollama drops it;
- with a tag, a reply that *starts* with JSON may be calls too, because tags such as
  ``[TOOL_CALLS]`` and ``<|python_tag|>`` are control tokens, which llamita's engine renders
  as nothing (Ollama's runner renders them);
- blank text before the first call is dropped rather than sent as content.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from enum import Enum
from typing import Any

from llamita.server.template import Template
from llamita.server.template.nodes import (
    ActionNode,
    BranchNode,
    FieldNode,
    IfNode,
    ListNode,
    Node,
    TextNode,
    VariableNode,
)

Json = dict[str, Any]

JSON_TAG = "{"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_WHITESPACE = re.compile(r"\s+")
_SEPARATORS = ",;[]"


# --------------------------------------------------------------------------- the template's syntax
def tool_call_tag(template: Template | None) -> str:
    """Ollama's ``parseTag``: the text that starts a tool call in ``template``, or ``{``.

    It is the first non-blank text inside the first ``{{ if ... .ToolCalls ... }}``, looking
    into ``range``/``with``/``if`` bodies but stopping at the first action, cut before any
    ``{`` (the JSON of the call itself) and trimmed.
    """
    return tool_call_opening(template).strip() or JSON_TAG


def tool_call_opening(template: Template | None) -> str:
    """The text the template writes before a call's JSON (``<tool_call>\\n``, ``[TOOL_CALLS] [``).

    Leading blanks dropped; "" when calls are bare JSON. A forced call's grammar writes it as is.
    """
    block = _tool_calls_block(template.root.nodes) if template is not None else None
    text = _first_text(block.list.nodes) if block is not None else None
    if text is None:
        return ""
    return text.replace("\r\n", "\n").split("{", 1)[0].lstrip()


def arguments_key(template: Template | None) -> str:
    """``parameters`` when the template replays calls with that key (Llama 3.1), else ``arguments``."""
    block = _tool_calls_block(template.root.nodes) if template is not None else None
    texts = _texts(block.list.nodes) if block is not None else ()
    return "parameters" if any('"parameters"' in text for text in texts) else "arguments"


def _texts(nodes: Iterable[Node]) -> Iterable[str]:
    for node in nodes:
        if isinstance(node, TextNode):
            yield node.text
        elif isinstance(node, ListNode):
            yield from _texts(node.nodes)
        elif isinstance(node, BranchNode):
            yield from _texts(node.list.nodes)
            if node.else_list is not None:
                yield from _texts(node.else_list.nodes)


def _mentions_tool_calls(node: IfNode) -> bool:
    # Ollama only looks at fields (.ToolCalls, .Message.ToolCalls); `$m.ToolCalls` is accepted
    # here too, since such a template replays calls the same way.
    return any(
        isinstance(arg, FieldNode | VariableNode) and "ToolCalls" in arg.ident
        for cmd in node.pipe.cmds
        for arg in cmd.args
    )


def _tool_calls_block(nodes: Iterable[Node]) -> IfNode | None:
    for node in nodes:
        found: IfNode | None = None
        if isinstance(node, IfNode) and _mentions_tool_calls(node):
            return node
        if isinstance(node, ListNode):
            found = _tool_calls_block(node.nodes)
        elif isinstance(node, BranchNode):
            found = _tool_calls_block(node.list.nodes)
            if found is None and node.else_list is not None:
                found = _tool_calls_block(node.else_list.nodes)
        if found is not None:
            return found
    return None


def _first_text(nodes: Iterable[Node]) -> str | None:
    for node in nodes:
        if isinstance(node, TextNode):
            if node.text.strip():
                return node.text
        elif isinstance(node, ListNode):
            found = _first_text(node.nodes)
            if found is not None:
                return found
        elif isinstance(node, BranchNode):
            found = _first_text(node.list.nodes)
            if found is None and node.else_list is not None:
                found = _first_text(node.else_list.nodes)
            return found
        elif isinstance(node, ActionNode):
            return None
    return None


def _last_text(nodes: Iterable[Node]) -> str | None:
    last: str | None = None
    for node in nodes:
        if isinstance(node, TextNode) and node.text.strip():
            last = node.text
        elif isinstance(node, ListNode):
            last = _last_text(node.nodes) or last
        elif isinstance(node, BranchNode):
            last = _last_text(node.list.nodes) or last
    return last


def closing_text(template: Template | None) -> str:
    """The text the template writes after the last call's JSON (``</tool_call>``, ``]``), or "".

    Recognising it lets the parser drop it as markup instead of returning it as content.
    """
    block = _tool_calls_block(template.root.nodes) if template is not None else None
    text = _last_text(block.list.nodes) if block is not None else None
    if text is None:
        return ""
    closing = text.rsplit("}", 1)[-1].strip()
    return "" if "{" in closing or '"' in closing else closing


def tool_names(tools: Iterable[Any]) -> frozenset[str]:
    """The function names of a request's ``tools`` (entries without one are ignored)."""
    names = set()
    for tool in tools or ():
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            names.add(name)
    return frozenset(names)


def new_call_id() -> str:
    """``call_`` plus 8 characters of ``[a-z0-9]``, the shape of Ollama's ``toolCallId``."""
    return "call_" + "".join(random.choices(_ID_ALPHABET, k=8))


# --------------------------------------------------------------------------- what a call looks like
def _arguments(value: Any) -> Json | None:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):  # some models write the arguments as a JSON string
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def call_from(value: Any, names: frozenset[str]) -> tuple[str, Json] | None:
    """``(name, arguments)`` when a decoded JSON value is a call of one of ``names``, else None."""
    if not isinstance(value, dict):
        return None
    if "name" in value:
        name = value["name"]
        if not isinstance(name, str) or name not in names:
            return None
        for key in ("arguments", "parameters"):
            if key in value:
                arguments = _arguments(value[key])
                return None if arguments is None else (name, arguments)
        return name, {}
    function = value.get("function")
    if isinstance(function, dict):  # OpenAI's {"type": "function", "function": {...}}
        return call_from(function, names)
    if len(value) == 1:  # {"get_weather": {"city": "Paris"}}
        ((name, arguments),) = value.items()
        if name in names and isinstance(arguments, dict):
            return name, arguments
    return None


def decode_call(text: str, names: frozenset[str]) -> tuple[str, Json] | None:
    """:func:`call_from` on JSON text; malformed (or absurdly nested) JSON is no call."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return call_from(value, names)


class _ObjectEnd:
    """Finds where the JSON object that starts a buffer ends, resuming where it last stopped.

    Resuming keeps a long held object (a ``format: "json"`` reply that is no call) linear to
    scan rather than quadratic in the number of tokens. Braces inside strings do not count.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.pos = 0
        self.depth = 0
        self.in_string = False
        self.escaped = False

    def find(self, buf: str) -> int | None:
        """The index just past the closing brace, or None while the object is unfinished."""
        for i in range(self.pos, len(buf)):
            c = buf[i]
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif c == "\\":
                    self.escaped = True
                elif c == '"':
                    self.in_string = False
            elif c == '"':
                self.in_string = True
            elif c == "{":
                self.depth += 1
            elif c == "}":
                self.depth -= 1
                if self.depth == 0:
                    self.pos = i + 1
                    return i + 1
        self.pos = len(buf)
        return None


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``tag``."""
    for n in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


# --------------------------------------------------------------------------- the parser
class _State(Enum):
    SEARCH = "search"  # tag mode: looking for the tag; JSON mode: waiting for the first non-blank
    BLOCK = "block"  # after the tag: markup and JSON objects
    PROSE = "prose"  # JSON mode once the reply is known not to be calls: all of it is content


class ToolParser:
    """Splits a streamed reply into content and Ollama tool calls; one parser per reply.

    ``feed`` each piece of generated text and send what it returns; ``flush`` at the end
    releases whatever was still held (an unfinished call is content). Calls are numbered
    (``function.index``) in the order they appear across the whole reply.
    """

    def __init__(self, template: Template | None, tools: Iterable[Any]) -> None:
        self.tag = tool_call_tag(template)
        # The tag less an opening "[" (which the block reads as markup); "" means JSON mode.
        self.opener = "" if self.tag == JSON_TAG else self.tag.rstrip("[ \t\r\n")
        self.names = tool_names(tools)
        self._markers = tuple(dict.fromkeys(m for m in (self.opener, closing_text(template)) if m))
        self._state = _State.SEARCH
        self._buf = ""
        self._held = ""  # markup of the current block, given back as content if no call follows
        self._block_calls = 0  # calls since the block (or the latest repeated tag) opened
        self._count = 0
        self._at_start = True  # nothing but blank text seen yet
        self._object = _ObjectEnd()

    def feed(self, text: str) -> tuple[str, list[Json]]:
        """Add generated text; returns the content that is decided and the completed calls."""
        self._buf += text
        return self._run(final=False)

    def flush(self) -> tuple[str, list[Json]]:
        """End of the reply: everything still held is decided (unfinished calls are content)."""
        return self._run(final=True)

    # ---- the state machine --------------------------------------------------------------
    def _run(self, final: bool) -> tuple[str, list[Json]]:
        out: list[str] = []
        calls: list[Json] = []
        while True:
            if self._state is _State.PROSE:
                out.append(self._buf)
                self._buf = ""
                break
            step = (
                self._search(out, final) if self._state is _State.SEARCH else self._block(out, calls, final)
            )
            if not step:
                break
        return "".join(out), calls

    def _take(self, n: int) -> str:
        taken, self._buf = self._buf[:n], self._buf[n:]
        self._object.reset()
        return taken

    def _search(self, out: list[str], final: bool) -> bool:
        """Content up to a possible block; True when the state changed."""
        if self._at_start and not self._start(out, final):
            return False
        if self._state is not _State.SEARCH:
            return True
        i = self._buf.find(self.opener)
        if i >= 0:
            out.append(self._take(i))
            self._open_block(self._take(len(self.opener)))
            return True
        keep = 0 if final else _partial_suffix(self._buf, self.opener)
        out.append(self._take(len(self._buf) - keep))
        return False

    def _start(self, out: list[str], final: bool) -> bool:
        """Decide how the reply begins; False while its first non-blank text is undecided.

        Leading blank text is held so that a reply that is only calls has no content. Besides
        the tag, a reply that opens with JSON may be calls: Llama 3.x writes no tag, and a tag
        that is a control token (``[TOOL_CALLS]``, ``<|python_tag|>``) reaches the parser as
        nothing because the engine does not render control tokens.
        """
        body = self._buf.lstrip()
        lead = len(self._buf) - len(body)
        if not body:
            if final:
                out.append(self._take(lead))
            return False
        if self.opener and not final and self.opener.startswith(body) and body != self.opener:
            return False  # may still become the tag
        self._at_start = False
        if self.opener and body.startswith(self.opener):
            self._open_block(self._take(lead + len(self.opener)))
        elif body[0] in "{[":
            self._open_block(self._take(lead))
        elif not self.opener:
            self._state = _State.PROSE  # without a tag, calls only open a reply
        return True

    def _open_block(self, held: str) -> None:
        self._held, self._block_calls = held, 0
        self._state = _State.BLOCK

    def _block(self, out: list[str], calls: list[Json], final: bool) -> bool:
        """One item of a block (markup, a call, or its end); False when waiting for more text."""
        buf = self._buf
        if not buf:
            if final:
                self._end_block(out)
            return False
        for marker in self._markers:
            if buf.startswith(marker):
                if marker == self.opener and self._block_calls:
                    # A new tag after calls: what came before it closed those calls.
                    self._held, self._block_calls = "", 0
                self._held += self._take(len(marker))
                return True
        if not final and any(marker.startswith(buf) for marker in self._markers):
            return False
        match = _WHITESPACE.match(buf)
        if match or buf[0] in _SEPARATORS:
            self._held += self._take(match.end() if match else 1)
            return True
        if buf[0] != "{":
            self._end_block(out)
            return True
        end = self._object.find(buf)
        if end is None:
            if not final:
                return False
            end = len(buf)
        found = decode_call(buf[:end], self.names)
        if found is None:
            out.append(("" if self._block_calls else self._held) + self._take(end))
            self._held = ""
            self._end_block(out)
            return True
        self._take(end)
        name, arguments = found
        calls.append(
            {"id": new_call_id(), "function": {"index": self._count, "name": name, "arguments": arguments}}
        )
        self._count += 1
        self._block_calls += 1
        self._held = ""
        return True

    def _end_block(self, out: list[str]) -> None:
        """Leave the block; its markup is content unless it surrounded calls."""
        if not self._block_calls:
            out.append(self._held)
        self._held, self._block_calls = "", 0
        self._object.reset()
        self._state = _State.SEARCH if self.opener else _State.PROSE


def chat_messages(content: str, calls: list[Json]) -> list[Json]:
    """The ``message`` objects to stream for one parser step.

    Content comes first and calls travel in a chunk of their own, as Ollama streams them, so
    clients that only read ``content`` from some chunks still see every call.
    """
    messages: list[Json] = []
    if content:
        messages.append({"role": "assistant", "content": content})
    if calls:
        messages.append({"role": "assistant", "content": "", "tool_calls": calls})
    return messages
