"""Ollama's rules for turning a request into a prompt with a model's Go template.

``render_prompt`` is Ollama's ``Template.Execute(Values)``. It picks one of three modes:

1. fill-in-the-middle: ``prompt`` and ``suffix`` both non-empty, the template sees only
   ``.Prompt .Suffix .Response .Think .ThinkLevel .IsThinkSet``;
2. messages: the template references ``.Messages``; it sees ``.System`` (all system contents
   joined by a blank line), the collated ``.Messages``, ``.Tools`` and the think values;
3. legacy: ``.System/.Prompt/.Response`` templates are replayed turn by turn, and the last turn
   stops right after the first ``.Response`` so the model continues from there.

Messages are plain mappings (or objects) in Ollama's API shape (``role``, ``content``,
``thinking``, ``images``, ``tool_calls``, ``tool_name``, ``tool_call_id``). Inside templates they
appear as Go structs, so ``.Role``, ``.ToolCalls`` and ``.Function.Arguments`` behave as in Ollama:
arguments and tools print as JSON, property maps range in sorted order, numbers from JSON are
float64 (``1`` prints ``1``, ``1000000`` prints ``1e+06``).

Two deliberate differences from Ollama: a tool's ``.Function`` (and ``.Function.Parameters``)
prints as JSON, as it did before Ollama converted tools for templates (now it prints Go's struct
dump); and the final legacy turn keeps ``define``d templates and functions where Ollama's copy
loses them and fails.

Truncating a chat to the context window needs a tokenizer and lives elsewhere; it should pick a
start index and pass ``messages_from(messages, start)`` here, as Ollama's ``chatPrompt`` does.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llamita.server.gocompat.json import marshal as go_json
from llamita.server.template.nodes import ActionNode, BranchNode, FieldNode, ListNode, Node, PipeNode

if TYPE_CHECKING:
    from llamita.server.template import Template

_THINK_LEVELS = ("high", "medium", "low", "max")

# --------------------------------------------------------------------------- Go-shaped values


class GoList(list[Any]):
    """A slice that remembers whether it is nil (Go marshals a nil slice as ``null``)."""

    def __init__(self, items: Iterable[Any] = (), *, go_nil: bool = False) -> None:
        super().__init__(items)
        self.go_nil = go_nil


class _JSONMap(dict[str, Any]):
    """A ``map[string]...`` whose ``String()`` is its JSON (``{}`` when nil)."""

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        super().__init__(items or {})
        self.go_nil = items is None

    def __str__(self) -> str:
        return "{}" if self.go_nil else go_json(self)


class TemplateArgs(_JSONMap):
    """Tool-call arguments: range in sorted order, print as JSON."""


class TemplateProperties(_JSONMap):
    """A tool's top-level parameter properties: range in sorted order, print as JSON."""


class ToolPropertiesMap(dict[str, Any]):
    """Nested ``properties`` of a property; Ollama keeps their insertion order in JSON."""

    go_ordered = True


class PropertyType(list[str]):
    """JSON-schema ``type``: a single name prints and marshals as a string, several as a list."""

    def __str__(self) -> str:
        if not self:
            return ""
        return self[0] if len(self) == 1 else "[" + " ".join(self) + "]"

    def __go_json__(self) -> str:
        return go_json(self[0]) if len(self) == 1 else go_json(list(self))


def _tag(name: str, *, nilable: bool = False) -> dict[str, Any]:
    return {"json": name, "json_nilable": nilable}


@dataclass
class TemplateToolProperty:
    AnyOf: list[TemplateToolProperty] = field(default_factory=list, metadata=_tag("anyOf,omitempty"))
    Type: PropertyType = field(default_factory=PropertyType, metadata=_tag("type,omitempty"))
    Items: Any = field(default=None, metadata=_tag("items,omitempty", nilable=True))
    Description: str = field(default="", metadata=_tag("description,omitempty"))
    Enum: list[Any] = field(default_factory=list, metadata=_tag("enum,omitempty"))
    Properties: ToolPropertiesMap | None = field(
        default=None, metadata=_tag("properties,omitempty", nilable=True)
    )
    Required: list[str] = field(default_factory=list, metadata=_tag("required,omitempty"))


class _PrintsAsJSON:
    """Tool structs print as JSON, matching what models were trained on with Ollama's tool types."""

    def __str__(self) -> str:
        return go_json(self)


@dataclass
class TemplateToolFunctionParameters(_PrintsAsJSON):
    Type: str = field(default="", metadata=_tag("type"))
    Defs: Any = field(default=None, metadata=_tag("$defs,omitempty", nilable=True))
    Items: Any = field(default=None, metadata=_tag("items,omitempty", nilable=True))
    Required: list[str] = field(default_factory=list, metadata=_tag("required,omitempty"))
    Properties: TemplateProperties = field(default_factory=TemplateProperties, metadata=_tag("properties"))


@dataclass
class TemplateToolFunction(_PrintsAsJSON):
    Name: str = field(default="", metadata=_tag("name"))
    Description: str = field(default="", metadata=_tag("description"))
    Parameters: TemplateToolFunctionParameters = field(
        default_factory=TemplateToolFunctionParameters, metadata=_tag("parameters")
    )


@dataclass
class TemplateTool(_PrintsAsJSON):
    Type: str = field(default="", metadata=_tag("type"))
    Items: Any = field(default=None, metadata=_tag("items,omitempty", nilable=True))
    Function: TemplateToolFunction = field(default_factory=TemplateToolFunction, metadata=_tag("function"))


class TemplateTools(GoList):
    """``.Tools``: prints as the JSON array of tools (``null`` when the request had none)."""

    def __str__(self) -> str:
        return go_json(self)


@dataclass
class TemplateToolCallFunction:
    Index: int = 0
    Name: str = ""
    Arguments: TemplateArgs = field(default_factory=TemplateArgs)


@dataclass
class TemplateToolCall:
    ID: str = ""
    Function: TemplateToolCallFunction = field(default_factory=TemplateToolCallFunction)


@dataclass
class TemplateMessage:
    Role: str = ""
    Content: str = ""
    Thinking: str = ""
    Images: GoList = field(default_factory=lambda: GoList(go_nil=True))
    ToolCalls: GoList = field(default_factory=lambda: GoList(go_nil=True))
    ToolName: str = ""
    ToolCallID: str = ""


# --------------------------------------------------------------------------- conversion


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _go_any(value: Any) -> Any:
    """Decoded JSON as Go sees it: every number is a float64."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _go_any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_go_any(v) for v in value]
    return value


def normalize_message(msg: Any) -> dict[str, Any]:
    """Copy a message (mapping or object) into Ollama's API shape with every field present."""
    return {
        "role": _text(_get(msg, "role")),
        "content": _text(_get(msg, "content")),
        "thinking": _text(_get(msg, "thinking")),
        "images": list(_get(msg, "images") or []),
        "tool_calls": list(_get(msg, "tool_calls") or []),
        "tool_name": _text(_get(msg, "tool_name")),
        "tool_call_id": _text(_get(msg, "tool_call_id")),
    }


def _template_tool_call(call: Any) -> TemplateToolCall:
    fn = _get(call, "function") or {}
    args = _get(fn, "arguments")
    return TemplateToolCall(
        ID=_text(_get(call, "id")),
        Function=TemplateToolCallFunction(
            Index=int(_get(fn, "index") or 0),
            Name=_text(_get(fn, "name")),
            Arguments=TemplateArgs(None if args is None else _go_any(args)),
        ),
    )


def _template_message(msg: Mapping[str, Any]) -> TemplateMessage:
    calls = msg["tool_calls"]
    images = msg["images"]
    return TemplateMessage(
        Role=msg["role"],
        Content=msg["content"],
        Thinking=msg["thinking"],
        Images=GoList(images, go_nil=not images),
        ToolCalls=GoList((_template_tool_call(c) for c in calls), go_nil=not calls),
        ToolName=msg["tool_name"],
        ToolCallID=msg["tool_call_id"],
    )


def _tool_property(prop: Any) -> TemplateToolProperty:
    types = _get(prop, "type")
    nested = _get(prop, "properties")
    return TemplateToolProperty(
        AnyOf=[_tool_property(p) for p in _get(prop, "anyOf") or []],
        Type=PropertyType([types] if isinstance(types, str) else list(types or [])),
        Items=_go_any(_get(prop, "items")),
        Description=_text(_get(prop, "description")),
        Enum=[_go_any(e) for e in _get(prop, "enum") or []],
        Properties=None
        if nested is None
        else ToolPropertiesMap({k: _tool_property(v) for k, v in nested.items()}),
        Required=[str(r) for r in _get(prop, "required") or []],
    )


def _template_tool(tool: Any) -> TemplateTool:
    fn = _get(tool, "function") or {}
    params = _get(fn, "parameters") or {}
    props = _get(params, "properties")
    return TemplateTool(
        Type=_text(_get(tool, "type")),
        Items=_go_any(_get(tool, "items")),
        Function=TemplateToolFunction(
            Name=_text(_get(fn, "name")),
            Description=_text(_get(fn, "description")),
            Parameters=TemplateToolFunctionParameters(
                Type=_text(_get(params, "type")),
                Defs=_go_any(_get(params, "$defs")),
                Items=_go_any(_get(params, "items")),
                Required=[str(r) for r in _get(params, "required") or []],
                Properties=TemplateProperties(
                    None if props is None else {k: _tool_property(v) for k, v in props.items()}
                ),
            ),
        ),
    )


def template_tools(tools: Iterable[Any] | None) -> TemplateTools:
    """Convert API tools to what ``.Tools`` holds; ``None`` stays a nil (``null``) list."""
    if tools is None:
        return TemplateTools(go_nil=True)
    return TemplateTools(_template_tool(t) for t in tools)


# --------------------------------------------------------------------------- request assembly


def think_values(think: bool | str | None) -> tuple[bool, str, bool]:
    """Ollama's (Think, ThinkLevel, IsThinkSet) for a request's ``think`` (bool, level or unset)."""
    if think is None:
        return False, "", False
    if isinstance(think, bool):
        return think, "medium" if think else "", True
    return think in _THINK_LEVELS, str(think), True


def collate(messages: Iterable[Any]) -> tuple[str, list[dict[str, Any]]]:
    """Join all system contents and merge consecutive same-role messages (tool results stay apart).

    Merging appends only the content ("\\n\\n"-joined); the first message's other fields win, as
    in Ollama. System messages are kept in the list as well as returned joined.
    """
    system: list[str] = []
    collated: list[dict[str, Any]] = []
    for raw in messages:
        msg = normalize_message(raw)
        if msg["role"] == "system":
            system.append(msg["content"])
        if collated and collated[-1]["role"] == msg["role"] and msg["role"] != "tool":
            collated[-1]["content"] += "\n\n" + msg["content"]
        else:
            collated.append(msg)
    return "\n\n".join(system), collated


def chat_prompt_messages(
    messages: Sequence[Any], *, model_system: str = "", model_messages: Sequence[Any] = ()
) -> list[Any]:
    """``/api/chat``: the model's MESSAGEs, then the request's, behind the model SYSTEM unless the
    request starts with its own system message."""
    msgs = [*model_messages, *messages]
    if messages and _text(_get(messages[0], "role")) != "system" and model_system:
        msgs.insert(0, {"role": "system", "content": model_system})
    return msgs


def generate_messages(
    prompt: str,
    *,
    system: str = "",
    model_system: str = "",
    model_messages: Sequence[Any] = (),
    images: Sequence[Any] = (),
    has_context: bool = False,
) -> list[Any]:
    """``/api/generate`` without a suffix: [request system, else model SYSTEM] + model MESSAGEs
    (skipped when the deprecated ``context`` is sent) + the prompt as a user message."""
    msgs: list[Any] = []
    if system or model_system:
        msgs.append({"role": "system", "content": system or model_system})
    if not has_context:
        msgs.extend(model_messages)
    msgs.append({"role": "user", "content": prompt, "images": list(images)})
    return msgs


def messages_from(messages: Sequence[Any], start: int) -> list[Any]:
    """The window ``messages[start:]`` plus the system messages it cut off (chat truncation)."""
    kept = [m for m in messages[:start] if _text(_get(m, "role")) == "system"]
    return kept + list(messages[start:])


def tag_images(messages: Sequence[Any], start: int = 0) -> tuple[list[dict[str, Any]], list[Any]]:
    """Number images from ``start`` on: each becomes ``[img-N]``, replacing an ``[img]`` marker in
    the content or else prefixed to it. Returns the messages and the images in ID order."""
    out = [normalize_message(m) for m in messages]
    media: list[Any] = []
    for msg in out[start:]:
        prefix, content = "", msg["content"]
        for image in msg["images"]:
            tag = f"[img-{len(media)}]"
            media.append(image)
            if "[img]" in content:
                content = content.replace("[img]", tag, 1)
            else:
                prefix += tag
        msg["content"] = prefix + content
    return out, media


# --------------------------------------------------------------------------- rendering

_tails: weakref.WeakKeyDictionary[Template, Template] = weakref.WeakKeyDictionary()


def _cut_after_response(root: ListNode) -> ListNode:
    """Drop every node visited after the first ``.Response`` field (Ollama's ``deleteNode``).

    The walk visits lists, branch bodies and pipeline arguments in order, but not branch
    conditions; the ``.Response`` field itself survives, so a prefilled assistant reply is printed
    and the prompt ends exactly where the model should continue.
    """
    cut = False

    def doomed(node: Node) -> bool:
        nonlocal cut
        if isinstance(node, FieldNode) and "Response" in node.ident:
            cut = True
            return False
        return cut

    def walk(node: Node) -> Node | None:
        if doomed(node):
            return None
        if isinstance(node, ListNode):
            node.nodes = [kept for kept in map(walk, node.nodes) if kept is not None]
        elif isinstance(node, BranchNode):
            body = walk(node.list)
            node.list = body if isinstance(body, ListNode) else ListNode(node.list.pos)
            if node.else_list is not None:
                rest = walk(node.else_list)
                node.else_list = rest if isinstance(rest, ListNode) else None
        elif isinstance(node, ActionNode):
            return node if walk(node.pipe) is not None else None
        elif isinstance(node, PipeNode):
            for cmd in node.cmds:
                cmd.args = [kept for kept in map(walk, cmd.args) if kept is not None]
                if not cmd.args:
                    return None
            if not node.cmds:
                return None
        return node

    result = walk(copy.deepcopy(root))
    return result if isinstance(result, ListNode) else ListNode(root.pos)


def _legacy_tail(template: Template) -> Template:
    tail = _tails.get(template)
    if tail is None:
        tail = type(template)(template.source, {**template.trees, "": _cut_after_response(template.root)})
        _tails[template] = tail
    return tail


def _render_legacy(template: Template, messages: list[dict[str, Any]], think: dict[str, Any]) -> str:
    out: list[str] = []
    turn = {"System": "", "Prompt": "", "Response": ""}

    def flush() -> None:
        out.append(template.execute({**turn, **think}))
        turn.update(System="", Prompt="", Response="")

    for msg in messages:
        role, content = msg["role"], msg["content"]
        if role == "system":
            if turn["Prompt"] or turn["Response"]:
                flush()
            turn["System"] = content
        elif role == "user":
            if turn["Response"]:
                flush()
            turn["Prompt"] = content
        elif role == "assistant":
            turn["Response"] = content
    out.append(_legacy_tail(template).execute({**turn, **think}))
    return "".join(out)


def render_prompt(
    template: Template,
    messages: Iterable[Any] = (),
    *,
    tools: Iterable[Any] | None = None,
    prompt: str = "",
    suffix: str = "",
    think: bool | str | None = None,
) -> str:
    """Ollama's ``Template.Execute``: render ``messages`` (already truncated) into a prompt.

    ``prompt``/``suffix`` are only used together (fill-in-the-middle); ``think`` is the request's
    think value (``True``/``False``, a level such as ``"high"``, or ``None`` when not sent).
    """
    on, level, is_set = think_values(think)
    think_vars = {"Think": on, "ThinkLevel": level, "IsThinkSet": is_set}
    if prompt and suffix:
        return template.execute({"Prompt": prompt, "Suffix": suffix, "Response": "", **think_vars})
    system, collated = collate(messages)
    if "messages" in template.vars():
        return template.execute(
            {
                "System": system,
                "Messages": [_template_message(m) for m in collated],
                "Tools": template_tools(tools),
                "Response": "",
                **think_vars,
            }
        )
    return _render_legacy(template, collated, think_vars)


def render_generate(
    template: Template,
    prompt: str,
    *,
    suffix: str = "",
    system: str = "",
    model_system: str = "",
    model_messages: Sequence[Any] = (),
    think: bool | str | None = None,
) -> str:
    """``/api/generate`` (not raw): fill-in-the-middle when a suffix is given, else a one-turn chat.

    Images and truncation are the caller's business (see ``tag_images``/``messages_from``); the
    chat path passes an empty tool list, as Ollama does for generate.
    """
    if suffix:
        return render_prompt(template, prompt=prompt, suffix=suffix, think=think)
    msgs = generate_messages(prompt, system=system, model_system=model_system, model_messages=model_messages)
    return render_prompt(template, msgs, tools=[], think=think)
