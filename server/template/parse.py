"""Parser for Go ``text/template``: turns tokens into the node tree (:mod:`.nodes`) the executor walks.

The grammar, scoping of ``$variables``, ``else if``/``else with`` chains and the error messages all
follow Go's ``text/template/parse`` so that a template Ollama accepts parses here too, and one it
rejects fails with a recognisable message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import ClassVar

from llamita.server.gocompat.fmt import quote as go_quote

from .lexer import T, TemplateError, Token, lex, parse_number, unquote
from .nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    FixedNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
)

# Deepest nesting of control structures (if/range/with, else-if chains, blocks) and of
# parenthesized pipelines.  Go limits only expressions (10,000); here every consumer of the tree
# (this parser, the executor, walk_identifiers) recurses per level and shares Python's
# ~1,000-frame limit with the server, so a hostile template must fail with a TemplateError
# instead.  Ollama's templates nest fewer than ten levels.
MAX_NESTING = 100

_node = dataclass(eq=False, slots=True)


# Markers the parser returns for ``{{end}}`` and ``{{else}}``; they never reach a tree.
@_node
class _EndNode(FixedNode):
    literal: ClassVar[str] = "{{end}}"


@_node
class _ElseNode(FixedNode):
    literal: ClassVar[str] = "{{else}}"


# --------------------------------------------------------------------------- parser

# tokens that can start a command's operand
_OPERAND_START = frozenset({
    T.BOOL, T.CHAR_CONSTANT, T.COMPLEX, T.DOT, T.FIELD, T.IDENTIFIER, T.NUMBER, T.NIL, T.RAW_STRING,
    T.STRING, T.VARIABLE, T.LEFT_PAREN,
})  # fmt: skip


def is_empty_tree(node: Node) -> bool:
    """A tree holding only whitespace text, which a later definition may replace."""
    if isinstance(node, ListNode):
        return all(is_empty_tree(n) for n in node.nodes)
    return isinstance(node, TextNode) and not node.text.strip()


class _Parser:
    """Recursive-descent parser over the full token list (so backing up is just moving an index)."""

    def __init__(self, src: str, funcs: Collection[str]) -> None:
        self.tokens = lex(src)
        self.i = 0
        self.high = 0  # furthest token read; Go reports parse errors at that token's line
        self.funcs = funcs
        self.trees: dict[str, ListNode] = {}
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.depth = 0  # current nesting, bounded by MAX_NESTING

    # token access -----------------------------------------------------------
    def next(self) -> Token:
        tok = self.tokens[min(self.i, len(self.tokens) - 1)]
        self.high = max(self.high, self.i)
        self.i += 1
        return tok

    def peek(self) -> Token:
        self.high = max(self.high, self.i)
        return self.tokens[min(self.i, len(self.tokens) - 1)]

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.type is T.SPACE:
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        while self.peek().type is T.SPACE:
            self.i += 1
        return self.peek()

    def backup(self) -> None:
        self.i -= 1

    # errors -----------------------------------------------------------------
    def error(self, msg: str) -> TemplateError:
        line = self.tokens[min(self.high, len(self.tokens) - 1)].line
        return TemplateError(f"template: :{line}: {msg}")

    def unexpected(self, tok: Token, context: str) -> TemplateError:
        if tok.type is T.ERROR:
            extra = ""
            if self.action_line and self.action_line != tok.line:
                extra = f" in action started at :{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.error(f"{tok}{extra}")
        return self.error(f"unexpected {tok} in {context}")

    def expect(self, typ: T, context: str) -> Token:
        tok = self.next_non_space()
        if tok.type is not typ:
            raise self.unexpected(tok, context)
        return tok

    @contextlib.contextmanager
    def nested(self) -> Iterator[None]:
        """One level deeper for the parse inside; past MAX_NESTING it is an error."""
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise self.error(f"max nesting depth exceeded ({MAX_NESTING})")
            yield
        finally:
            self.depth -= 1

    # structure --------------------------------------------------------------
    def parse(self) -> dict[str, ListNode]:
        root = ListNode(self.peek().pos)
        while self.peek().type is not T.EOF:
            if self.peek().type is T.LEFT_DELIM:
                mark = self.i
                self.next()
                if self.next_non_space().type is T.DEFINE:
                    self.parse_definition()
                    continue
                self.i = mark
            node = self.text_or_action()
            if isinstance(node, (_EndNode, _ElseNode)):
                raise self.error(f"unexpected {node}")
            root.nodes.append(node)
        self.add_tree("", root)
        return self.trees

    def add_tree(self, name: str, root: ListNode) -> None:
        existing = self.trees.get(name)
        if existing is None or is_empty_tree(existing):
            self.trees[name] = root
        elif not is_empty_tree(root):
            raise self.error(f"template: multiple definition of template {go_quote(name)}")

    def _nested_tree(self, name: str, context: str) -> None:
        """Parse a ``define``/``block`` body as its own tree with fresh variable scope."""
        saved = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        with self.nested():
            root, end = self.item_list()
        if not isinstance(end, _EndNode):
            raise self.error(f"unexpected {end} in {context}")
        self.add_tree(name, root)
        self.vars, self.range_depth = saved

    def parse_definition(self) -> None:
        context = "define clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        self.expect(T.RIGHT_DELIM, context)
        self._nested_tree(name, context)

    def template_name(self, tok: Token, context: str) -> str:
        if tok.type not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(tok, context)
        try:
            return unquote(tok.val)
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().type is not T.EOF:
            node = self.text_or_action()
            if isinstance(node, (_EndNode, _ElseNode)):
                return lst, node
            lst.nodes.append(node)
        raise self.error("unexpected EOF")

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.type is T.TEXT:
            return TextNode(tok.pos, tok.val)
        if tok.type is T.LEFT_DELIM:
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(tok, "input")

    def action(self) -> Node:
        tok = self.next_non_space()
        handler = {
            T.BLOCK: self.block_control,
            T.BREAK: lambda: self.loop_control(tok, BreakNode, "{{break}}"),
            T.CONTINUE: lambda: self.loop_control(tok, ContinueNode, "{{continue}}"),
            T.ELSE: self.else_control,
            T.END: lambda: _EndNode(self.expect(T.RIGHT_DELIM, "end").pos),
            T.IF: self.if_control,
            T.RANGE: lambda: RangeNode(*self.parse_control("range")),
            T.TEMPLATE: self.template_control,
            T.WITH: self.with_control,
        }.get(tok.type)
        if handler is not None:
            return handler()
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, tok.line, self.pipeline("command", T.RIGHT_DELIM))

    def loop_control(self, keyword: Token, cls: type[Node], context: str) -> Node:
        tok = self.next_non_space()
        if tok.type is not T.RIGHT_DELIM:
            raise self.unexpected(tok, context)
        if self.range_depth == 0:
            raise self.error(f"{context} outside {{{{range}}}}")
        return cls(keyword.pos)

    def if_control(self) -> Node:
        return IfNode(*self.parse_control("if"))

    def with_control(self) -> Node:
        return WithNode(*self.parse_control("with"))

    def parse_control(self, context: str) -> tuple[int, int, PipeNode, ListNode, ListNode | None]:
        nvars = len(self.vars)
        try:
            with self.nested():
                pipe = self.pipeline(context, T.RIGHT_DELIM)
                if context == "range":
                    self.range_depth += 1
                body, nxt = self.item_list()
                if context == "range":
                    self.range_depth -= 1
                else_list = None
                if isinstance(nxt, _ElseNode):
                    chains = {"if": (T.IF, self.if_control), "with": (T.WITH, self.with_control)}
                    chained = chains.get(context)
                    if chained is not None and self.peek().type is chained[0]:
                        # {{if a}}x{{else if b}}y{{end}} is {{if a}}x{{else}}{{if b}}y{{end}}{{end}}
                        self.next()
                        else_list = ListNode(nxt.pos, [chained[1]()])
                    else:
                        else_list, nxt = self.item_list()
                        if not isinstance(nxt, _EndNode):
                            raise self.error(f"expected end; found {nxt}")
                return pipe.pos, pipe.line, pipe, body, else_list
        finally:
            del self.vars[nvars:]

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.type in (T.IF, T.WITH):
            return _ElseNode(peek.pos)  # leave the keyword for parse_control's chain handling
        return _ElseNode(self.expect(T.RIGHT_DELIM, "else").pos)

    def template_control(self) -> Node:
        context = "template clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = None
        if self.next_non_space().type is not T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def block_control(self) -> Node:
        context = "block clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        self._nested_tree(name, context)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    # pipelines --------------------------------------------------------------
    def pipeline(self, context: str, end: T) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, tok.line)
        while (var := self.peek_non_space()).type is T.VARIABLE:
            mark = self.i
            self.next()
            nxt = self.peek_non_space()
            if nxt.type in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.type is T.ASSIGN
                self.next()
                pipe.decl.append(VariableNode(var.pos, [var.val]))
                self.vars.append(var.val)
            elif nxt.type is T.CHAR and nxt.val == ",":
                self.next()
                pipe.decl.append(VariableNode(var.pos, [var.val]))
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().type in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue  # second variable of "range $i, $x := ..."
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            else:
                self.i = mark
            break
        while True:
            tok = self.next_non_space()
            if tok.type is end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.type not in _OPERAND_START:
                raise self.unexpected(tok, context)
            self.backup()
            pipe.cmds.append(self.command())

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                raise self.error(f"non executable command in pipeline stage {stage}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.type is T.SPACE:
                continue
            if tok.type in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif tok.type is not T.PIPE:
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().type is not T.FIELD:
            return node
        pos = self.peek().pos
        fields: list[str] = []
        while self.peek().type is T.FIELD:
            fields.append(self.next().val[1:])
        if isinstance(node, FieldNode):
            return FieldNode(pos, node.ident + fields)
        if isinstance(node, VariableNode):
            return VariableNode(pos, node.ident + fields)
        if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
            raise self.error(f"unexpected . after term {go_quote(str(node))}")
        return ChainNode(pos, node, fields)

    def term(self) -> Node | None:
        tok = self.next_non_space()
        typ = tok.type
        if typ is T.IDENTIFIER:
            if tok.val not in self.funcs:
                raise self.error(f"function {go_quote(tok.val)} not defined")
            return IdentifierNode(tok.pos, tok.val)
        if typ is T.DOT:
            return DotNode(tok.pos)
        if typ is T.NIL:
            return NilNode(tok.pos)
        if typ is T.VARIABLE:
            if tok.val not in self.vars:
                raise self.error(f"undefined variable {go_quote(tok.val)}")
            return VariableNode(tok.pos, [tok.val])
        if typ is T.FIELD:
            return FieldNode(tok.pos, tok.val[1:].split("."))
        if typ is T.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if typ in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            try:
                return NumberNode(tok.pos, tok.val, parse_number(tok.val, typ))
            except ValueError as exc:
                raise self.error(str(exc)) from None
        if typ is T.LEFT_PAREN:
            with self.nested():
                return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
        if typ in (T.STRING, T.RAW_STRING):
            try:
                return StringNode(tok.pos, tok.val, unquote(tok.val))
            except ValueError as exc:
                raise self.error(str(exc)) from None
        self.backup()
        return None


def parse_trees(src: str, funcs: Collection[str]) -> dict[str, ListNode]:
    """Parse ``src`` into named trees: ``""`` is the main template, plus every define/block."""
    return _Parser(src, funcs).parse()
