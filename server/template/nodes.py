"""The node tree of a parsed Go ``text/template``, and the identifier walk Ollama's ``Vars`` uses.

The node kinds follow Go's ``text/template/parse``.  Nodes render back to template syntax
with ``str()``, which execution errors use for their ``at <...>`` context, as Go does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from llamita.server.gocompat.fmt import quote as go_quote

from .lexer import TemplateError

_node = dataclass(eq=False, slots=True)


@_node
class Node:
    pos: int  # offset of the node in the template source, for error locations


@_node
class FixedNode(Node):
    """A node that always reads the same (``.``, ``nil``, ``{{break}}``…)."""

    literal: ClassVar[str] = ""

    def __str__(self) -> str:
        return self.literal


@_node
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@_node
class TextNode(Node):
    text: str

    def __str__(self) -> str:
        return self.text


@_node
class IdentifierNode(Node):
    """A function name."""

    name: str

    def __str__(self) -> str:
        return self.name


@_node
class VariableNode(Node):
    """``$x`` or ``$x.Field.Chain``; ``ident[0]`` is the variable name including ``$``."""

    ident: list[str]

    def __str__(self) -> str:
        return ".".join(self.ident)


@_node
class FieldNode(Node):
    """``.A.B``: field/key lookups starting at dot."""

    ident: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


@_node
class ChainNode(Node):
    """Field lookups applied to a non-field term, e.g. ``(index .L 0).Name``."""

    node: Node
    field: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return inner + "".join("." + f for f in self.field)


@_node
class DotNode(FixedNode):
    literal: ClassVar[str] = "."


@_node
class NilNode(FixedNode):
    literal: ClassVar[str] = "nil"


@_node
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@_node
class NumberNode(Node):
    """A numeric or character constant; ``value`` is already Go's "ideal constant" (int or float)."""

    text: str
    value: int | float

    def __str__(self) -> str:
        return self.text


@_node
class StringNode(Node):
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@_node
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@_node
class PipeNode(Node):
    line: int
    is_assign: bool = False
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(c) for c in self.cmds)


@_node
class ActionNode(Node):
    line: int
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@_node
class BranchNode(Node):
    """Common shape of ``if``, ``range`` and ``with``."""

    keyword: ClassVar[str] = ""
    line: int
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None

    def __str__(self) -> str:
        text = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            text += "{{else}}" + str(self.else_list)
        return text + "{{end}}"


@_node
class IfNode(BranchNode):
    keyword: ClassVar[str] = "if"


@_node
class RangeNode(BranchNode):
    keyword: ClassVar[str] = "range"


@_node
class WithNode(BranchNode):
    keyword: ClassVar[str] = "with"


@_node
class BreakNode(FixedNode):
    literal: ClassVar[str] = "{{break}}"


@_node
class ContinueNode(FixedNode):
    literal: ClassVar[str] = "{{continue}}"


@_node
class TemplateNode(Node):
    """``{{template "name" pipeline}}``; ``pipe`` is None when no argument was given."""

    line: int
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        arg = "" if self.pipe is None else " " + str(self.pipe)
        return "{{template " + go_quote(self.name) + arg + "}}"


def walk_identifiers(node: Node | None) -> Iterator[str]:
    """Yield field and variable names the way Ollama's ``Identifiers`` does.

    Only pipelines' commands are inspected (not declarations), chains contribute nothing, and a
    ``{{template}}`` call without an argument is rejected, because Ollama rejects those templates.
    """
    if isinstance(node, ListNode):
        for child in node.nodes:
            yield from walk_identifiers(child)
    elif isinstance(node, TemplateNode):
        if node.pipe is None:
            raise TemplateError("undefined template specified")
        yield from walk_identifiers(node.pipe)
    elif isinstance(node, ActionNode):
        yield from walk_identifiers(node.pipe)
    elif isinstance(node, BranchNode):
        yield from walk_identifiers(node.pipe)
        yield from walk_identifiers(node.list)
        if node.else_list is not None:
            yield from walk_identifiers(node.else_list)
    elif isinstance(node, PipeNode):
        for cmd in node.cmds:
            for arg in cmd.args:
                yield from walk_identifiers(arg)
    elif isinstance(node, (FieldNode, VariableNode)):
        yield from node.ident
