"""Tree-walking evaluator with Go ``text/template`` semantics (as configured by Ollama).

Python values stand in for Go ones: ``None`` is a nil interface, a mapping is a ``map[string]any``
(sorted keys when ranged or printed), ``list``/``tuple`` a slice, a dataclass a struct (printed
``{a b}``), and a class with its own ``__str__`` a ``fmt.Stringer``. Truth and ``%v`` printing
follow Go, including the quirk Ollama inherits from ``missingkey=zero`` on ``map[string]any``: a
missing key is nil and prints ``<no value>``.

Field lookups accept both Python and Go shapes because Ollama's templates address struct fields by
their Go names (``.Role``, ``.ToolCalls``): on a mapping ``.ToolCalls`` tries the key
``"ToolCalls"``, then ``"tool_calls"``, then ``"toolcalls"``; on an object it tries the attribute
``ToolCalls`` then ``tool_calls``, and a missing attribute is an error, as a missing struct field
is in Go.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from typing import Any

from llamita.server.gocompat.fmt import format_value, go_type_name, quote, sorted_items

from .lexer import TemplateError
from .nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
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
from .values import FuncError, GoFunc, is_true

MAX_TEMPLATE_DEPTH = 100
# Bounds on one execution (Go has none; a request may carry its own template, so one request
# must not be able to hold a worker for seconds or fill memory).  A step is a node walked or a
# range iteration: the templates llamita derives and Ollama's in the golden tests take 5-12
# steps per message (tools included), so even a 10,000-message chat stays far below.  The
# output cap is twice the largest JSON body the server accepts, so no prompt a client can send
# is refused by it; it also bounds strings built by functions (printf, slice, json) before
# they are printed.
MAX_STEPS = 500_000
MAX_OUTPUT = 64 << 20
_NO_FINAL: Any = object()  # "no piped-in value", distinct from a piped-in nil
_NO_FIELDS = (str, bytes, bytearray, bool, int, float, complex, list, tuple)  # Go kinds without fields
_SNAKE_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_INT64 = 1 << 63


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def snake_case(name: str) -> str:
    """Go field name to Python/JSON style: ``ToolCallID`` -> ``tool_call_id``."""
    return _SNAKE_RE.sub("_", name).lower()


def lookup_key(m: Mapping[Any, Any], name: str) -> Any:
    """Map lookup by Go field name with Python-style fallbacks; a missing key is nil."""
    for key in (name, snake_case(name), name.lower()):
        if key in m:
            return m[key]
    return None


class _Budget:
    """Steps and output characters left to one execution, shared by its ``{{template}}`` calls."""

    __slots__ = ("output", "steps")

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.output = MAX_OUTPUT


class _State:
    """Execution state for one template invocation (a ``{{template}}`` call gets a fresh one)."""

    __slots__ = ("budget", "depth", "funcs", "name", "node", "out", "src", "trees", "vars")

    def __init__(
        self,
        trees: Mapping[str, ListNode],
        funcs: Mapping[str, GoFunc],
        src: str,
        out: list[str],
        name: str,
        dot: Any,
        depth: int,
        budget: _Budget,
    ) -> None:
        self.budget = budget
        self.trees = trees
        self.funcs = funcs
        self.src = src
        self.out = out
        self.name = name
        self.vars: list[list[Any]] = [["$", dot]]
        self.node: Node | None = None
        self.depth = depth

    # errors -----------------------------------------------------------------
    def error(self, msg: str) -> TemplateError:
        node = self.node
        if node is None:
            return TemplateError(f"template: {self.name}: {msg}")
        pos = min(node.pos, len(self.src))
        line = self.src.count("\n", 0, pos) + 1
        col = pos - (self.src.rfind("\n", 0, pos) + 1)
        return TemplateError(f"template: :{line}:{col}: executing {quote(self.name)} at <{node}>: {msg}")

    # variables --------------------------------------------------------------
    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        raise self.error(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        raise self.error(f"undefined variable: {name}")

    # budget -----------------------------------------------------------------
    def step(self, node: Node) -> None:
        budget = self.budget
        budget.steps -= 1
        if budget.steps < 0:
            self.node = node
            raise self.error(f"exceeded the limit of {MAX_STEPS} execution steps")

    def write(self, node: Node, text: str) -> None:
        self.check_size(node, text)
        self.budget.output -= len(text)
        self.out.append(text)

    def check_size(self, node: Node, text: str) -> None:
        if len(text) > self.budget.output:
            self.node = node
            raise self.error(f"output exceeds the limit of {MAX_OUTPUT} characters")

    # statements -------------------------------------------------------------
    def walk(self, dot: Any, node: Node) -> None:
        self.step(node)
        if isinstance(node, TextNode):
            self.write(node, node.text)
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.write(node, self.printable(node, value))
        elif isinstance(node, (IfNode, WithNode)):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        else:
            self.node = node
            raise self.error(f"unknown node: {node}")

    def printable(self, node: Node, value: Any) -> str:
        if inspect.isroutine(value):
            self.node = node
            raise self.error(f"can't print {node} of type {go_type_name(value)}")
        return format_value(value, top=True)

    def walk_if_or_with(self, dot: Any, node: IfNode | WithNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if is_true(value):
                self.walk(value if isinstance(node, WithNode) else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def _range_pairs(self, value: Any, ndecl: int) -> tuple[Iterable[tuple[Any, Any]], bool]:
        """(index, element) pairs to range over, lazily for an integer, and whether any exist."""
        if value is None:
            return (), False
        if isinstance(value, Mapping):
            return sorted_items(value), len(value) > 0
        if isinstance(value, (list, tuple, bytes, bytearray)):
            return enumerate(value), len(value) > 0
        if isinstance(value, int) and not isinstance(value, bool):
            if ndecl > 1:
                raise self.error(f"can't use {value} to iterate over more than one variable")
            return ((i, i) for i in range(value)), value > 0
        raise self.error(f"range can't iterate over {format_value(value, False)}")

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        self.node = node
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            decl = node.pipe.decl
            pairs, any_pairs = self._range_pairs(value, len(decl))
            inner = len(self.vars)
            for index, elem in pairs:
                self.step(node)
                if node.pipe.is_assign:
                    if len(decl) > 1:
                        self.set_var(decl[0].ident[0], index)
                        self.set_var(decl[1].ident[0], elem)
                    elif decl:
                        self.set_var(decl[0].ident[0], elem)
                else:
                    if decl:
                        self.vars[-1][1] = elem
                    if len(decl) > 1:
                        self.vars[-2][1] = index
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                finally:
                    del self.vars[inner:]
            if not any_pairs and node.else_list is not None:
                self.walk(dot, node.else_list)
        except _Break:
            pass
        finally:
            del self.vars[mark:]

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.node = node
        tree = self.trees.get(node.name)
        if tree is None:
            raise self.error(f"template {quote(node.name)} not defined")
        if self.depth >= MAX_TEMPLATE_DEPTH:
            raise self.error(f"exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")
        new_dot = self.eval_pipeline(dot, node.pipe)
        sub = _State(
            self.trees, self.funcs, self.src, self.out, node.name, new_dot, self.depth + 1, self.budget
        )
        sub.walk(new_dot, tree)

    # expressions ------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Any:
        if pipe is None:
            return None
        self.node = pipe
        value = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.vars.append([var.ident[0], value])
        return value

    def not_a_function(self, args: list[Node] | None, final: Any) -> None:
        if (args is not None and len(args) > 1) or final is not _NO_FINAL:
            raise self.error(f"can't give argument to non-function {args[0] if args else ''}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.node = first
            return self.eval_field_chain(dot, dot, first.ident, cmd.args, final)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, NilNode):
            raise self.error("nil is not a command")
        return self.eval_literal(dot, first)

    def eval_literal(self, dot: Any, node: Node) -> Any:
        if isinstance(node, DotNode):
            return dot
        if isinstance(node, (BoolNode, StringNode)):
            return node.value if isinstance(node, BoolNode) else node.text
        if isinstance(node, NumberNode):
            if isinstance(node.value, int) and not -_INT64 <= node.value < _INT64:
                raise self.error(f"{node.text} overflows int")
            return node.value
        if isinstance(node, NilNode):
            return None
        raise self.error(f"can't evaluate command {node}")

    def eval_arg(self, dot: Any, node: Node) -> Any:
        self.node = node
        if isinstance(node, FieldNode):
            return self.eval_field_chain(dot, dot, node.ident, [node], _NO_FINAL)
        if isinstance(node, VariableNode):
            return self.eval_variable(dot, node, None, _NO_FINAL)
        if isinstance(node, PipeNode):
            return self.eval_pipeline(dot, node)
        if isinstance(node, IdentifierNode):
            return self.eval_function(dot, node, node, None, _NO_FINAL)
        if isinstance(node, ChainNode):
            return self.eval_chain(dot, node, None, _NO_FINAL)
        return self.eval_literal(dot, node)

    def eval_variable(self, dot: Any, node: VariableNode, args: list[Node] | None, final: Any) -> Any:
        self.node = node
        value = self.var_value(node.ident[0])
        if len(node.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node.ident[1:], args, final)

    def eval_chain(self, dot: Any, node: ChainNode, args: list[Node] | None, final: Any) -> Any:
        self.node = node
        if isinstance(node.node, NilNode):
            raise self.error(f"indirection through explicit nil in {node}")
        receiver = self.eval_arg(dot, node.node)
        self.node = node
        return self.eval_field_chain(dot, receiver, node.field, args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, ident: list[str], args: list[Node] | None, final: Any
    ) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(dot, name, None, _NO_FINAL, receiver)
        return self.eval_field(dot, ident[-1], args, final, receiver)

    def eval_field(self, dot: Any, name: str, args: list[Node] | None, final: Any, receiver: Any) -> Any:
        has_args = (args is not None and len(args) > 1) or final is not _NO_FINAL
        if receiver is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, Mapping):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            return lookup_key(receiver, name)
        if not isinstance(receiver, _NO_FIELDS):
            for attr in (name, snake_case(name)):
                if attr.startswith("_"):
                    continue
                try:
                    value = getattr(receiver, attr)
                except AttributeError:
                    continue
                if inspect.ismethod(value):
                    return self.call(dot, value, name, args, final, None)
                if has_args:
                    raise self.error(f"{name} has arguments but cannot be invoked as function")
                return value
        raise self.error(f"can't evaluate field {name} in type {go_type_name(receiver)}")

    def eval_function(
        self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node] | None, final: Any
    ) -> Any:
        self.node = node
        gofunc = self.funcs.get(node.name)
        if gofunc is None:
            raise self.error(f"{quote(node.name)} is not a defined function")
        return self.call(dot, gofunc.fn, node.name, args, final, gofunc, cmd)

    def call(
        self,
        dot: Any,
        fn: Any,
        name: str,
        args: list[Node] | None,
        final: Any,
        spec: GoFunc | None,
        cmd: Node | None = None,
    ) -> Any:
        """Call a function or method; arity errors point at its name, failures at the command."""
        node = cmd if cmd is not None else self.node
        arg_nodes = args[1:] if args else []
        nargs = len(arg_nodes) + (final is not _NO_FINAL)
        if spec is not None:
            if spec.max_args is None and nargs < spec.min_args:
                raise self.error(
                    f"wrong number of args for {name}: want at least {spec.min_args} got {nargs}"
                )
            if spec.max_args is not None and not spec.min_args <= nargs <= spec.max_args:
                raise self.error(f"wrong number of args for {name}: want {spec.max_args} got {nargs}")
            if spec.short_circuit:
                return self._and_or(dot, name == "or", arg_nodes, final)
        values = [self.eval_arg(dot, a) for a in arg_nodes]
        if final is not _NO_FINAL:
            values.append(final)
        if spec is None:
            try:
                inspect.signature(fn).bind(*values)
            except TypeError as exc:
                self.node = node
                raise self.error(f"wrong number of args for {name}: {exc}") from None
            except ValueError:
                pass  # no introspectable signature; let the call decide
        try:
            result = fn(*values)
        except TemplateError:
            raise
        except Exception as exc:
            self.node = node
            detail = str(exc) if isinstance(exc, FuncError) else f"{type(exc).__name__}: {exc}"
            raise self.error(f"error calling {name}: {detail}") from exc
        if isinstance(result, str):
            self.check_size(node, result)  # strings that double in variables never get printed
        return result

    def _and_or(self, dot: Any, want: bool, arg_nodes: list[Node], final: Any) -> Any:
        """Go 1.18+ short-circuits: return the first deciding argument, else the last one."""
        value = None
        for node in arg_nodes:
            value = self.eval_arg(dot, node)
            if is_true(value) == want:
                return value
        return final if final is not _NO_FINAL else value


def execute(
    trees: Mapping[str, ListNode], name: str, data: Any, src: str, funcs: Mapping[str, GoFunc]
) -> str:
    """Run the tree called ``name`` with ``data`` as dot and ``$``; return the rendered text."""
    tree = trees.get(name)
    if tree is None:
        raise TemplateError(f'template: no template {quote(name)} associated with template ""')
    out: list[str] = []
    state = _State(trees, funcs, src, out, name, data, 0, _Budget())
    try:
        state.walk(data, tree)
    except RecursionError:
        raise TemplateError(f"template: {name}: exceeded maximum template depth") from None
    except (_Break, _Continue):  # unreachable: the parser only allows these inside range
        raise TemplateError("template: break or continue outside range") from None
    return "".join(out)
