"""Go ``text/template`` engine, parsed the way Ollama's ``template.Parse`` does.

Model files carry Go templates (Modelfile ``TEMPLATE``), so llamita parses and executes them with
Go's semantics instead of translating them to another engine.  Ollama's rules for turning a
request into template data live in :mod:`llamita.server.prompt.render`.  Typical use::

    tmpl = parse(model_template_text)           # once per model; raises TemplateError
    "suffix" in tmpl.vars()                     # capability detection, as Ollama does
    text = tmpl.execute({"Prompt": "hi"})
"""

from __future__ import annotations

from typing import Any

from .exec import execute
from .funcs import BUILTINS
from .lexer import TemplateError
from .nodes import ActionNode, CommandNode, FieldNode, ListNode, PipeNode, walk_identifiers
from .parse import parse_trees

__all__ = ["DEFAULT_TEMPLATE", "MAX_TEMPLATE_SIZE", "Template", "TemplateError", "parse"]


class Template:
    """A parsed template set: the main tree (``""``) plus every ``define``/``block`` tree."""

    def __init__(self, source: str, trees: dict[str, ListNode]) -> None:
        self.source = source
        self.trees = trees
        self._vars: list[str] | None = None

    @property
    def root(self) -> ListNode:
        return self.trees[""]

    def vars(self) -> list[str]:
        """Lower-cased field/variable identifiers across all trees, sorted (Ollama's ``Vars``).

        Raises ``TemplateError("undefined template specified")`` for ``{{template "x"}}`` calls
        without an argument, which Ollama rejects.
        """
        if self._vars is None:
            names = {ident.lower() for tree in self.trees.values() for ident in walk_identifiers(tree)}
            self._vars = sorted(names)
        return list(self._vars)

    def contains(self, text: str) -> bool:
        """Substring test on the original source (Ollama's ``Contains``, used for tool detection)."""
        return text in self.source

    def execute(self, data: Any) -> str:
        """Render the main template with ``data`` as dot and ``$``."""
        return execute(self.trees, "", data, self.source, BUILTINS)

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _response_action() -> ActionNode:
    pipe = PipeNode(0, 0)
    cmd = CommandNode(0)
    cmd.args.append(FieldNode(0, ["Response"]))
    pipe.cmds.append(cmd)
    return ActionNode(0, 0, pipe)


MAX_TEMPLATE_SIZE = 64 << 10
"""Longest template source accepted (characters).  Ollama's templates are a few KiB; parsing
costs tens of microseconds per action here, so a request's template must not be megabytes."""


def parse(src: str) -> Template:
    """Parse a model template the way Ollama's ``template.Parse`` does.

    A template that mentions neither ``.Messages`` nor ``.Response`` gets a trailing
    ``{{ .Response }}`` so legacy prompt-only templates can still replay assistant turns;
    ``source`` keeps the text as written.  Sources over :data:`MAX_TEMPLATE_SIZE` are refused.
    """
    if len(src) > MAX_TEMPLATE_SIZE:
        raise TemplateError(f"template: {len(src)} characters is over the limit of {MAX_TEMPLATE_SIZE}")
    tmpl = Template(src, parse_trees(src, BUILTINS))
    names = tmpl.vars()
    if "messages" not in names and "response" not in names:
        tmpl.root.nodes.append(_response_action())
        tmpl._vars = None
    return tmpl


DEFAULT_TEMPLATE = parse("{{ .Prompt }}")
"""Ollama's ``template.DefaultTemplate``: what a model without a TEMPLATE layer uses."""
