"""The runtime service: a typed generate or chat request in, Ollama's native chunks out.

One prologue (model, keep_alive/unload, capability checks, think, options, format grammar,
template, render, tokenize, fit, sampling) and one event loop (thinking and tool-call parsing,
logprobs, stats, the final ``done`` chunk) serve both; :mod:`.kinds` holds what differs.  The
chunks are the objects ``/api/generate`` and ``/api/chat`` send; ``/v1`` translates them.
Errors are domain errors (:mod:`.errors`), raised before the first chunk when the request is
refused; a request that does not finish raises too, never ending as a short success.
Rendering and tokenizing run in a worker thread, so a long chat never stalls other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

from llamita.server.engine import Done, Priority, QueueFull, SamplingParams, Token
from llamita.server.model.model import StoredModel
from llamita.server.options import DEFAULT_NUM_CTX
from llamita.server.store.blobs import Store

from .embed import embed
from .errors import Failed, InvalidRequest
from .kinds import PRIORITIES, Chat, Generate, Kind
from .metrics import Metrics
from .prepare import (
    Timing,
    check_finished,
    check_think,
    context_limit,
    done_reason,
    fit,
    merged_options,
    parse_format,
    parse_keep_alive,
    parse_think,
    resolve_model,
    sampling_params,
)
from .requests import ChatRequest, EmbedRequest, GenerateRequest
from .runners import Runner, Runners
from .usage import Usage

EMPTY_PROMPT = "the rendered prompt is empty: the template produced no text to evaluate"
Json = dict[str, Any]


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp(base: Json, part: Json, done: bool) -> Json:
    """A native chunk: the request's model, the time now, ``part`` (the kind's fields), ``done``."""
    return {**base, "created_at": now_rfc3339(), **part, "done": done}


def _with_logprobs(chunk: Json, logprobs: list[Json]) -> Json:
    """Ollama's ``logprobs`` field (``omitempty``): the entries of the tokens in this chunk."""
    if logprobs:
        chunk["logprobs"] = list(logprobs)
    return chunk


def _estimate(text: str) -> list[int]:
    """Stand-in tokens for a render with no model loaded (``_debug_render_only``)."""
    return [0] * (len(text) // 4)


class Runtime:
    """Serves inference requests over the store's models and the loaded runners."""

    def __init__(self, store: Store, runners: Runners, metrics: Metrics, usage: Usage | None = None) -> None:
        self.store = store
        self.runners = runners
        self.metrics = metrics
        self.usage = usage or Usage()  # in memory unless build_app gives it the store's file

    def generate(
        self,
        req: GenerateRequest,
        session: str | None = None,
        priority: str | None = None,
        owner: str | None = None,
    ) -> AsyncIterator[Json]:
        """``/api/generate``'s chunks; ``session`` supersedes that editor's previous request,
        ``priority`` (one of ``PRIORITIES``) overrides the class the request's shape implies,
        ``owner`` names the API key it came with (None on an open server)."""
        return self._run(Generate(req), session, priority, owner)

    def chat(
        self,
        req: ChatRequest,
        session: str | None = None,
        priority: str | None = None,
        owner: str | None = None,
    ) -> AsyncIterator[Json]:
        """``/api/chat``'s chunks (``session``, ``priority`` and ``owner`` as for ``generate``)."""
        return self._run(Chat(req), session, priority, owner)

    async def embed(self, req: EmbedRequest, owner: str | None = None) -> Json:
        """``/api/embed``'s (or, ``legacy``, ``/api/embeddings``') reply; ``owner`` as for ``generate``."""
        return await embed(self, req, owner)

    async def acquire(
        self, model: StoredModel, options: Json, keep_alive: float | None, timing: Timing
    ) -> Runner:
        before = time.monotonic()
        try:
            runner = await self.runners.acquire(model, options, keep_alive)
        except QueueFull:
            raise
        except Exception as e:
            raise Failed(f"failed to load model {model.short_name}: {e}") from e
        timing.load = time.monotonic() - before
        return runner

    # ---- the prologue ---------------------------------------------------------------------
    async def _run(
        self, kind: Kind, session: str | None, priority: str | None, owner: str | None = None
    ) -> AsyncIterator[Json]:
        req = kind.req
        timing = Timing(time.monotonic())
        model = resolve_model(self.store, req.model, kind.missing())
        keep_alive = parse_keep_alive(req.keep_alive)
        base = {"model": req.model, "created_at": ""}

        def done(**fields: Any) -> Json:
            return {**_stamp(base, kind.empty_part(), True), **fields}

        if kind.empty and keep_alive == 0:
            await self.runners.expire(model)
            yield done(done_reason="unload")
            return
        kind.check(model)
        think = check_think(model, parse_think(req.think), req.model)
        kind.check_images(model)
        options = merged_options(model, req.options)
        format_grammar = parse_format(req.format)
        template = kind.template(model)
        grammar = kind.grammar(template, format_grammar)  # a forced tool call's, or the format's
        if grammar and (req.think is None or grammar is not format_grammar):
            # A grammar leaves no room for a thinking block; Ollama's two-pass run is not done.
            # A format may still be asked to think; a forced tool call never does.
            think = False

        if req.debug_render_only:
            if kind.empty and isinstance(kind, Chat):
                yield done(done_reason="load")
                return
            num_ctx = int(options.get("num_ctx") or DEFAULT_NUM_CTX)
            text = await asyncio.to_thread(kind.render, template, model, think, _estimate, num_ctx)
            yield done(_debug_info={"rendered_template": text, "image_count": kind.image_count()})
            return

        runner = await self.acquire(model, options, keep_alive, timing)
        try:
            if kind.empty:
                yield done(done_reason="load")
                return
            num_ctx = context_limit(runner, options)
            # A long render must not stall the server: off the event loop.
            text, tokens = await asyncio.to_thread(
                kind.prompt, runner.engine, template, model, think, num_ctx
            )
            if not tokens:
                raise InvalidRequest(EMPTY_PROMPT)
            tokens = fit(tokens, num_ctx, options, req.truncate)
            params = sampling_params(
                options, grammar, shift=req.shift, logprobs=req.logprobs, top_logprobs=req.top_logprobs
            )
            kind.start(template, think, text)
            urgency = PRIORITIES[priority] if priority else kind.priority(len(tokens))
            async for chunk in self._events(
                kind, runner, tokens, params, (session, urgency, owner), base, timing
            ):
                yield chunk
        finally:
            self.runners.release(runner)

    # ---- the event loop -------------------------------------------------------------------
    async def _events(
        self,
        kind: Kind,
        runner: Runner,
        tokens: list[int],
        params: SamplingParams,
        caller: tuple[str | None, Priority, str | None],
        base: Json,
        timing: Timing,
    ) -> AsyncIterator[Json]:
        observer = self.metrics.observe(runner.model.short_name)
        logprobs: list[Json] = []
        generated = 0  # tokens seen, for the usage of a request that ends without its Done
        recorded = False

        def chunk(part: Json) -> Json:
            nonlocal logprobs
            out = _with_logprobs(_stamp(base, part, False), logprobs)
            logprobs = []
            return out

        try:
            events = runner.engine.generate(tokens, params, *caller)
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, Token):
                        observer.token()
                        generated += 1
                        logprobs += event.logprobs
                        for part in kind.feed(event.text, bool(logprobs)):
                            yield chunk(part)
                        continue
                    assert isinstance(event, Done)
                    recorded = True  # a failed or aborted request counts too, with what it evaluated
                    self._record(runner, caller[2], event)
                    check_finished(event)
                    for part in kind.flush(bool(logprobs)):
                        yield chunk(part)
                    final = _stamp(base, kind.empty_part(), True)
                    final["done_reason"] = done_reason(event)
                    if event.stop_sequence:  # a llamita extension: which stop string ended the text
                        final["stop_sequence"] = event.stop_sequence
                    _with_logprobs(final, logprobs)
                    final.update(kind.extra(event))
                    final.update(timing.stats(event))
                    yield final
        finally:
            observer.finish(runner.engine)
            if not recorded:  # the client went away first: its prompt's count never came back
                self.usage.record(caller[2], runner.model.short_name, generated_tokens=generated)

    def _record(self, runner: Runner, owner: str | None, done: Done) -> None:
        self.usage.record(
            owner,
            runner.model.short_name,
            prompt_tokens=done.prompt_eval_count,
            cached_tokens=done.prompt_cache_tokens,
            generated_tokens=done.eval_count,
            engine_ns=done.prompt_eval_duration + done.eval_duration,
        )
