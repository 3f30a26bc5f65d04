"""The completion engine: from a cursor in a document to a post-processed suggestion.

Order of work for one request, cheapest first:

1. settings (enabled for this language?) and the cache (exact context, or typing through a shown one;
   a context that gave nothing is cached as empty, and only an explicit request asks again);
2. the context window and the none/single/multi-line decision (no request mid-word);
3. cancel-previous: a newer request for the same document supersedes this one, which then answers
   ``None`` instead of an error; the superseded HTTP call is closed, so the model server stops it;
4. debounce (adaptive, skipped for explicit requests), then ``/api/show`` once per model to choose the
   repo-level format (``repo``: the vocabulary has ``<|repo_name|>`` and ``<|file_sep|>``), the native
   Suffix-template path, raw mode with a family template, or the chat fill-in (``chatfill``); the
   repository context (``repocontext``: imported definitions, similar snippets) goes before the prefix;
5. ``/api/generate`` with ``X-Llamita-Session`` = this document's id, then the filters, then the cache;
   only an answer that finished (``done`` with a stop/length reason) is shown or cached: one the server
   cut short (a 499 or a partial reply, e.g. superseded by this document's newer request) is no completion.

Model-server failures never raise to the editor: they are reported once through :class:`Status` and
the request answers ``None``; after a connection failure, requests are skipped for a few seconds.
This module knows nothing about LSP types: offsets are ``str`` indices into the document text.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llamita.lsp.client import ModelInfo, ModelServerError, OllamaClient, ResponseError, ServerUnreachable
from llamita.lsp.prompts import PromptError
from llamita.lsp.settings import Settings
from llamita.lsp.status import Status

from . import chatfill, repo, repocontext
from .cache import CompletionCache
from .context import OtherFile, Window, build_window, line_comment
from .debounce import Debouncer
from .filters import FilterContext, Suggestion, postprocess
from .fim import TemplateError, family_for, load_template, request_body
from .imports import reader
from .repocontext import RepoContext, render_comments
from .syntax import Mode, decide

RETRY_AFTER = 5.0
CANCELED = 499  # Ollama's status for a request that was canceled (llamita: or superseded)


@dataclass(frozen=True)
class CompletionRequest:
    uri: str
    text: str
    offset: int
    language_id: str
    invoked: bool = False
    others: tuple[OtherFile, ...] = field(default=())
    path: str = ""  # the document's file-system path ("" for an untitled buffer)
    root: str = ""  # the workspace folder holding it ("" when none)
    buffers: Mapping[str, str] = field(default_factory=dict)  # open documents: path -> unsaved text


@dataclass
class Stats:
    """Counters for logs, tests and ``bench/lsp.py``."""

    requests: int = 0
    model_calls: int = 0
    superseded: int = 0
    skipped: int = 0


def session_id(uri: str) -> str:
    """One KV-cache session per document and language-server process."""
    return f"llamita-lsp-{os.getpid()}-{hashlib.sha1(uri.encode()).hexdigest()[:12]}"


def finished(answer: dict[str, object]) -> bool:
    """Whether a non-streamed ``/api/generate`` answer is the model's complete answer."""
    return answer.get("done") is True and answer.get("done_reason") in ("stop", "length")


def _server_key(s: Settings) -> tuple[object, ...]:
    return (s.server_url, s.api_key, s.completion_model)


def _request_key(s: Settings) -> tuple[object, ...]:
    return (
        *_server_key(s),
        s.context_tokens,
        s.suffix_share,
        s.context,
        s.snippet_tokens,
        s.definition_share,
        s.num_predict,
        s.temperature,
        tuple(s.stop),
        s.fim_template,
        s.prompts_dir,
    )


class CompletionEngine:
    def __init__(self, settings: Settings, client: OllamaClient, status: Status) -> None:
        """``client`` is the language server's (it re-points it when ``serverUrl`` changes)."""
        self.settings = settings
        self.client = client
        self.status = status
        self.cache = CompletionCache()
        self.stats = Stats()
        self._models: dict[str, asyncio.Future[ModelInfo]] = {}
        self._inflight: dict[str, asyncio.Task[Suggestion | None]] = {}
        self._debouncers: dict[str, Debouncer] = {}
        self._retry_at = 0.0

    def configure(self, settings: Settings) -> None:
        """New settings; a changed server or model invalidates what was learned about it, and any
        change to what a request asks for invalidates the cached suggestions."""
        if _server_key(settings) != _server_key(self.settings):
            self._models.clear()
            self._retry_at = 0.0
        if _request_key(settings) != _request_key(self.settings):
            self.cache.clear()
        self.settings = settings
        for debouncer in self._debouncers.values():
            debouncer.configure(settings.debounce_ms, settings.adaptive_debounce)

    def forget(self, uri: str) -> None:
        """The document was closed."""
        task = self._inflight.pop(uri, None)
        if task is not None:
            task.cancel()
        self._debouncers.pop(uri, None)

    async def complete(self, request: CompletionRequest) -> Suggestion | None:
        """The suggestion for ``request``, or None (disabled, mid-word, superseded, nothing good)."""
        self.stats.requests += 1
        settings = self.settings
        if not settings.completion_enabled(request.language_id):
            return None
        previous = self._inflight.pop(request.uri, None)
        if previous is not None and not previous.done():
            previous.cancel()
        before, after = request.text[: request.offset], request.text[request.offset :]
        cached = self.cache.get(settings.completion_model, before, after)
        if cached is not None and (cached.text or not request.invoked):
            return cached if cached.text else None
        window = build_window(before, after, settings.context_tokens, settings.suffix_share)
        mode = decide(window.prefix, window.suffix, request.language_id)
        if mode is Mode.NONE:
            return None
        task = asyncio.ensure_future(self._ask_model(request, before, after, window, mode))
        self._inflight[request.uri] = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            self.stats.superseded += 1
            return None
        finally:
            if self._inflight.get(request.uri) is task:
                del self._inflight[request.uri]

    def _debouncer(self, uri: str) -> Debouncer:
        if uri not in self._debouncers:
            self._debouncers[uri] = Debouncer(self.settings.debounce_ms, self.settings.adaptive_debounce)
        return self._debouncers[uri]

    async def _ask_model(
        self, request: CompletionRequest, before: str, after: str, window: Window, mode: Mode
    ) -> Suggestion | None:
        settings = self.settings
        debouncer = self._debouncer(request.uri)
        debouncer.record_request(time.monotonic())
        delay = debouncer.delay(invoked=request.invoked, line_end=mode is Mode.MULTI)
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() < self._retry_at:
            self.stats.skipped += 1
            return None
        model = settings.completion_model
        try:
            info = await self.model_info(model)
            use_repo = self.repo_format(info)
            chat = (
                not use_repo
                and not info.supports_insert
                and chatfill.use_chat(model, info.family, settings.fim_template)
            )
            context = self.repo_context(request, before)
            snippets = render_comments(context, request.language_id)
            generation: dict[str, Any] = {  # the same options, whichever prompt format is used
                "num_predict": settings.num_predict,
                "temperature": settings.temperature,
                "stop": settings.stop,
                "keep_alive": settings.keep_alive,
            }
            if use_repo:
                body = repo.request_body(
                    model,
                    window,
                    mode,
                    repo=context.repo or repocontext.repo_name(request.root),
                    files=repocontext.files(context, f"{line_comment(request.language_id)} ..."),
                    current_path=repocontext.display_path(request.path, request.root) if request.path else "",
                    **generation,
                )
            elif chat:
                body = chatfill.request_body(
                    model,
                    window,
                    mode,
                    language=request.language_id,
                    snippets=snippets,
                    **generation,
                    prompts_dir=settings.prompts_dir,
                )
            else:
                template = None
                if not info.supports_insert:
                    template = load_template(
                        family_for(model, info.family, settings.fim_template), settings.prompts_dir
                    )
                body = request_body(
                    model,
                    window,
                    mode,
                    snippets=snippets,
                    template=template,
                    **generation,
                )
            started = time.monotonic()
            self.stats.model_calls += 1
            answer = await self.client.generate(body, session=session_id(request.uri), priority="interactive")
            debouncer.record_latency(time.monotonic() - started)
        except ResponseError as e:
            if e.status == CANCELED:  # the server stopped it for a newer request: no completion
                self.stats.superseded += 1
                return None
            self._report(e, model)
            return None
        except ModelServerError as e:
            self._report(e, model)
            return None
        except (TemplateError, PromptError) as e:
            self.status.problem("template", f"llamita: FIM template: {e}")
            return None
        self.status.resolved("unreachable")
        if not finished(answer):
            # Cut short (superseded, aborted): neither shown nor cached, or the partial text
            # would be offered at this position as if it were the model's whole answer.
            self.stats.superseded += 1
            return None
        ctx = FilterContext(window.prefix, window.suffix, mode)
        raw = str(answer.get("response") or "")
        suggestion = postprocess(chatfill.extract(raw, ctx, request.language_id) if chat else raw, ctx)
        # "Nothing worth showing" is cached too (empty text): editors re-ask for the same position often.
        self.cache.put(model, before, after, suggestion or Suggestion(""))
        return suggestion

    def repo_context(self, request: CompletionRequest, before: str) -> RepoContext:
        """Imported definitions and similar snippets for ``request`` (empty when ``context`` is off)."""
        settings = self.settings
        if not settings.context or settings.snippet_tokens <= 0:
            return RepoContext()
        return repocontext.gather(
            before=before,
            path=request.path,
            root=request.root,
            language_id=request.language_id,
            others=request.others,
            budget=settings.snippet_tokens,
            definition_share=settings.definition_share,
            read=reader(dict(request.buffers)),
        )

    def repo_format(self, info: ModelInfo) -> bool:
        """The repo-level format: context on, no forced template, and the model's vocabulary has it."""
        settings = self.settings
        return settings.context and not settings.fim_template and repo.supported(info.special_tokens)

    async def model_info(self, model: str) -> ModelInfo:
        """``/api/show`` for ``model``, asked once per model and server (concurrent callers share it)."""
        pending = self._models.get(model)
        if pending is None:
            pending = asyncio.ensure_future(self._show(model))
            self._models[model] = pending
        try:
            return await asyncio.shield(pending)
        except ModelServerError:
            if self._models.get(model) is pending:
                del self._models[model]
            raise

    async def _show(self, model: str) -> ModelInfo:
        info = await self.client.show(model, verbose=True)
        if self.repo_format(info):
            path = "repo-level FIM"
        elif info.supports_insert:
            path = "native FIM (suffix)"
        elif chatfill.use_chat(model, info.family, self.settings.fim_template):
            path = "chat fill-in"
        else:
            path = "raw FIM template"
        self.status.info(f"completion model {model}: {path}")
        return info

    async def warm_up(self) -> None:
        """Load the completion model ahead of the first keystroke (an empty generate loads it)."""
        if not self.settings.enable:
            return
        model = self.settings.completion_model
        body = {"model": model}
        if self.settings.keep_alive:
            body["keep_alive"] = self.settings.keep_alive
        try:
            await self.model_info(model)
            await self.client.generate(body)
        except ModelServerError as e:
            self._report(e, model)
            return
        self.status.resolved("unreachable")

    def _report(self, error: ModelServerError, model: str) -> None:
        url = self.settings.server_url
        if isinstance(error, ServerUnreachable):
            self._retry_at = time.monotonic() + RETRY_AFTER
            self.status.problem(
                "unreachable",
                f"llamita: no model server answers at {url} ({error}); completions resume when it does",
            )
        elif isinstance(error, ResponseError) and error.status == 404:
            self._models.pop(model, None)
            self.status.problem(
                f"model:{model}", f"llamita: model {model!r} not found at {url}: {error.message}"
            )
        else:
            self.status.problem(f"error:{model}", f"llamita: completion request failed: {error}")
