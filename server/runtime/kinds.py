"""What differs between a generate and a chat request, behind one interface.

:class:`~.generate.Runtime` runs one prologue and one event loop for both; a kind supplies
the checks only one of them makes, how its prompt is rendered and tokenized, and the shape of
its chunks (``response``/``thinking`` fields for generate, a ``message`` for chat).
"""

from __future__ import annotations

from typing import Any

from llamita.server.engine import Done, Engine, Priority
from llamita.server.engine.sampling import GrammarError, check_schema_bounds, grammar_compiles
from llamita.server.gocompat.fmt import quote
from llamita.server.model.model import StoredModel
from llamita.server.prompt.fit import chat_text, dedupe_bos, generate_text
from llamita.server.prompt.thinking import ThinkingParser
from llamita.server.prompt.toolgrammar import ToolGrammarError, tool_grammar
from llamita.server.prompt.tools import ToolParser, chat_messages, tool_name
from llamita.server.template import TemplateError

from .errors import InvalidRequest, ModelMissing
from .prepare import check_context_ids, check_images, template_of, thinking_parser
from .requests import ChatRequest, GenerateRequest

Json = dict[str, Any]
ASSISTANT = {"role": "assistant", "content": ""}

# What ``X-Llamita-Priority`` may say (our language server sends ``interactive`` for keystrokes
# and ``batch`` for reviews and PR text); without it the request's shape decides.
PRIORITIES = {"interactive": Priority.INTERACTIVE, "normal": Priority.NORMAL, "batch": Priority.BATCH}
# A raw or FIM prompt up to this long is taken to be an editor's completion request.
INTERACTIVE_TOKENS = 2048
TOOL_CHOICE_WITH_FORMAT = (
    "tool_choice {} cannot be combined with format: a forced call is written in the model's tool-call "
    "syntax, not the format's JSON"
)


class Generate:
    def __init__(self, req: GenerateRequest) -> None:
        self.req = req
        self.splitter: ThinkingParser | None = None

    @property
    def empty(self) -> bool:
        return not self.req.prompt

    def missing(self) -> Exception:
        return ModelMissing(f"model '{self.req.model}' not found")

    def check(self, model: StoredModel) -> None:
        req = self.req
        if req.raw and (req.template or req.system or req.context):
            raise InvalidRequest("raw mode does not support template, system, or context")
        if "completion" not in model.capabilities:
            raise InvalidRequest(f"{quote(req.model)} does not support generate")
        if req.suffix and "insert" not in model.capabilities:
            raise InvalidRequest(f"{model.name} does not support insert")

    def check_images(self, model: StoredModel) -> None:
        check_images(model, self.req.images)

    def image_count(self) -> int:
        return len(self.req.images or [])

    def grammar(self, template: Any, format_grammar: str | None) -> str | None:
        return format_grammar

    def template(self, model: StoredModel) -> Any:
        return None if self.req.raw else template_of(model, self.req.template)

    def render(self, template: Any, model: StoredModel, think: Any, tokenize: Any, num_ctx: int) -> str:
        req = self.req
        if req.raw:
            return req.prompt
        try:
            return generate_text(
                template,
                prompt=req.prompt,
                suffix=req.suffix,
                system=req.system,
                model_system=model.system,
                model_messages=model.messages,
                has_context=bool(req.context),
                think=think,
            )
        except TemplateError as e:
            raise InvalidRequest(f"template error: {e}") from e

    def prompt(
        self, engine: Engine, template: Any, model: StoredModel, think: Any, num_ctx: int
    ) -> tuple[str, list[int]]:
        """The rendered prompt and its tokens (the deprecated ``context`` in front)."""
        context = self.req.context
        check_context_ids(context, engine.n_vocab)
        text = self.render(template, model, think, engine.tokenize, num_ctx)
        tokens = dedupe_bos(engine.tokenize(text), engine.bos)
        if context and not self.req.raw:
            tokens = list(context) + tokens[1 if engine.add_bos else 0 :]
        return text, tokens

    def start(self, template: Any, think: Any, text: str) -> None:
        self.splitter = None if self.req.raw else thinking_parser(template, think, text)

    # ---- chunks --------------------------------------------------------------------------
    def empty_part(self) -> Json:
        return {"response": ""}

    def _parts(self, thinking: str, response: str, pending: bool) -> list[Json]:
        if not (thinking or response or pending):
            return []  # all held back (it may be the start of a tag)
        return [{"response": response, "thinking": thinking} if thinking else {"response": response}]

    def feed(self, text: str, pending: bool) -> list[Json]:
        return self._parts(*(self.splitter.feed(text) if self.splitter else ("", text)), pending)

    def flush(self, pending: bool) -> list[Json]:
        return self._parts(*self.splitter.flush(), pending) if self.splitter else []

    def extra(self, done: Done) -> Json:
        return {} if self.req.raw else {"context": done.context}

    def priority(self, n_tokens: int) -> Priority:
        """A short FIM (``suffix``) or raw prompt is an editor's completion: someone is typing."""
        short = n_tokens <= INTERACTIVE_TOKENS
        return Priority.INTERACTIVE if short and (self.req.suffix or self.req.raw) else Priority.NORMAL


class Chat:
    def __init__(self, req: ChatRequest) -> None:
        self.req = req
        self.splitter: ThinkingParser | None = None
        self.tool_parser: ToolParser | None = None
        self.calls = 0  # tool calls returned so far

    @property
    def empty(self) -> bool:
        return not self.req.messages

    def missing(self) -> Exception:
        return InvalidRequest("model is required")

    @property
    def tools(self) -> list[Json] | None:
        """The tools offered to the model: none under ``tool_choice: "none"``."""
        return None if self.req.tool_choice == "none" else self.req.tools

    def check(self, model: StoredModel) -> None:
        if self.tools and "tools" not in model.capabilities:
            raise InvalidRequest(f"{model.name} does not support tools")
        if "completion" not in model.capabilities:
            raise InvalidRequest(f"{quote(self.req.model)} does not support chat")

    def check_images(self, model: StoredModel) -> None:
        for message in self.req.messages:
            check_images(model, message.get("images"))

    def image_count(self) -> int:
        return 0

    def grammar(self, template: Any, format_grammar: str | None) -> str | None:
        """The grammar that enforces ``tool_choice`` "required" or a named function, else ``format``'s."""
        req = self.req
        if req.tool_choice not in ("required", "function"):
            return format_grammar
        if format_grammar is not None:
            raise InvalidRequest(TOOL_CHOICE_WITH_FORMAT.format(req.forced_tool or req.tool_choice))
        try:
            check_schema_bounds([t for t in req.tools or [] if req.forced_tool in ("", tool_name(t))])
            grammar = tool_grammar(
                template, req.tools or [], forced=req.forced_tool, parallel=req.parallel_tool_calls
            )
        except (ToolGrammarError, GrammarError) as e:
            raise InvalidRequest(f"tool_choice cannot be enforced: {e}") from e
        if not grammar_compiles(grammar):
            raise InvalidRequest(
                "tool_choice cannot be enforced: llama.cpp cannot compile the tools' grammar"
            )
        return grammar

    def template(self, model: StoredModel) -> Any:
        return template_of(model, None)

    def render(self, template: Any, model: StoredModel, think: Any, tokenize: Any, num_ctx: int) -> str:
        try:
            return chat_text(
                template,
                self.req.messages,
                model_system=model.system,
                model_messages=model.messages,
                tools=self.tools,
                think=think,
                num_ctx=num_ctx,
                tokenize=tokenize,
                truncate=self.req.truncate,
            )
        except TemplateError as e:
            raise InvalidRequest(f"template error: {e}") from e

    def prompt(
        self, engine: Engine, template: Any, model: StoredModel, think: Any, num_ctx: int
    ) -> tuple[str, list[int]]:
        tokenized: dict[str, list[int]] = {}  # truncation tokenizes the kept chat: reused below

        def tokenize(text: str) -> list[int]:
            if text not in tokenized:
                tokenized[text] = engine.tokenize(text)
            return tokenized[text]

        text = self.render(template, model, think, tokenize, num_ctx)
        return text, dedupe_bos(tokenize(text), engine.bos)

    def start(self, template: Any, think: Any, text: str) -> None:
        # With tools, text that may be a tool call is held back until parsed (Ollama's tools.Parser).
        self.tool_parser = ToolParser(template, self.tools) if self.tools else None
        self.calls = 0
        self.splitter = thinking_parser(template, think, text)

    # ---- chunks --------------------------------------------------------------------------
    def empty_part(self) -> Json:
        return {"message": dict(ASSISTANT)}

    def _parts(self, thinking: str, content: str) -> list[Json]:
        out = [{"role": "assistant", "content": "", "thinking": thinking}] if thinking else []
        if self.tool_parser is not None:
            out += chat_messages(*self._serial(*self.tool_parser.feed(content)))
        elif content:
            out.append({"role": "assistant", "content": content})
        return [{"message": message} for message in out]

    def _serial(self, content: str, calls: list[Json]) -> tuple[str, list[Json]]:
        """``parallel_tool_calls: false``: calls after the first are dropped (the text goes on)."""
        if not self.req.parallel_tool_calls:
            calls = calls[: max(0, 1 - self.calls)]
        self.calls += len(calls)
        return content, calls

    def feed(self, text: str, pending: bool) -> list[Json]:
        # Logprobs with no message yet are sent with the next one (tool-call text may be held back).
        return self._parts(*(self.splitter.feed(text) if self.splitter else ("", text)))

    def flush(self, pending: bool) -> list[Json]:
        parts = self._parts(*self.splitter.flush()) if self.splitter else []
        if self.tool_parser is not None:
            flushed = chat_messages(*self._serial(*self.tool_parser.flush()))
            parts += [{"message": message} for message in flushed]
        return parts

    def extra(self, done: Done) -> Json:
        return {}

    def priority(self, n_tokens: int) -> Priority:
        """A conversation or an agent's turn: not a keystroke (a header may say otherwise)."""
        return Priority.NORMAL


Kind = Generate | Chat
