"""``/api/generate``, ``/api/chat``, ``/api/embed``, ``/api/embeddings`` and ``/api/ps``.

``run_generate``/``run_chat`` are async iterators of native response objects; they validate
the request in Ollama's order and raise :class:`APIError` before the first object.  The
NDJSON handlers here and the OpenAI layer both consume them (one inference path).
A request carrying ``X-Llamita-Session`` supersedes that editor's previous request: the older one
ends with a 499 (before its first byte) or a last ``{"error"}`` line, never as a short success.
Rendering and tokenizing run in a worker thread, so a long chat never stalls other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from llamita.server.engine.request import Done, FinishReason, SamplingParams, Token
from llamita.server.engine.sampling import grammar_compiles
from llamita.server.engine.scheduler import QueueFull
from llamita.server.gocompat.time import parse_duration, rfc3339
from llamita.server.model.model import ModelNotFound, StoredModel, load_model
from llamita.server.options import OptionError, merge_options
from llamita.server.prompt.fit import PromptTooLong, chat_text, dedupe_bos, fit_tokens, generate_text
from llamita.server.prompt.thinking import ThinkingParser, infer_tags
from llamita.server.prompt.tools import ToolParser, chat_messages
from llamita.server.prompt.wire import (
    UnmarshalError,
    check_generate,
    check_messages,
    check_tools,
    unmarshal_error,
)
from llamita.server.runtime.runners import Runner, Runners
from llamita.server.store.names import parse_name
from llamita.server.template import TemplateError
from llamita.server.template import parse as parse_template

from .errors import APIError, error_response
from .native import read_json, store_of
from .streaming import NDJSON

SESSION_HEADER = "x-llamita-session"
_THINK_LEVELS = ("low", "medium", "high", "max")
CANCELED = "request canceled"
EMPTY_PROMPT = "the rendered prompt is empty: the template produced no text to evaluate"

log = logging.getLogger("llamita")


def runners_of(request: Request) -> Runners:
    return request.app.state.runners


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- request parsing ---------------------------------------------------------------------
def parse_keep_alive(value: Any) -> float | None:
    """Seconds (negative = forever), or None when absent; Ollama's Duration JSON rules."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise APIError("keep_alive must be a duration string or a number of seconds", 400)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as e:
            raise APIError(str(e), 400) from e
    raise APIError("keep_alive must be a duration string or a number of seconds", 400)


def parse_format(value: Any) -> str | None:
    """``"json"`` → JSON grammar, a JSON-schema object → its grammar, empty → none."""
    if value in (None, "", "null"):
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if value == "json":
        return JSON_GBNF
    if isinstance(value, dict):
        try:
            grammar = json_schema_to_gbnf(json.dumps(value))
        except Exception as e:
            raise APIError(f'invalid format: {e}; expected "json" or a valid JSON Schema object', 400) from e
        if not grammar_compiles(grammar):
            raise APIError(
                f"invalid format: llama.cpp cannot compile the grammar of the schema {json.dumps(value)}; "
                'expected "json" or a valid JSON Schema object',
                400,
            )
        return grammar
    raise APIError(f'invalid format: {json.dumps(value)}; expected "json" or a valid JSON Schema object', 400)


def parse_think(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _THINK_LEVELS:
        return value
    raise APIError(
        f'invalid think value: "{value}" (must be "true", "false", "low", "medium", "high", "max")', 400
    )


def merged_options(model: StoredModel, requested: Any) -> dict[str, Any]:
    """DefaultOptions ← model PARAMETERs ← request options, typed and clamped (see ``merge_options``)."""
    try:
        return merge_options(model.options, requested)
    except OptionError as e:
        raise APIError(str(e), 400) from e


def sampling_params(
    options: dict[str, Any], grammar: str | None, body: dict[str, Any] | None = None
) -> SamplingParams:
    """Engine sampling from merged options (and the request's ``logprobs``/``top_logprobs``)."""
    stop = options.get("stop") or []
    body = body or {}
    return SamplingParams(
        temperature=float(options.get("temperature", 0.8)),
        top_k=int(options.get("top_k", 40)),
        top_p=float(options.get("top_p", 0.9)),
        min_p=float(options.get("min_p", 0.0)),
        typical_p=float(options.get("typical_p", 1.0)),
        repeat_penalty=float(options.get("repeat_penalty", 1.0)),
        presence_penalty=float(options.get("presence_penalty", 0.0)),
        frequency_penalty=float(options.get("frequency_penalty", 0.0)),
        repeat_last_n=int(options.get("repeat_last_n", 64)),
        seed=int(options.get("seed", -1)),
        mirostat=int(options.get("mirostat", 0) or 0),
        mirostat_tau=float(options.get("mirostat_tau", 5.0) or 5.0),
        mirostat_eta=float(options.get("mirostat_eta", 0.1) or 0.1),
        num_predict=int(options.get("num_predict", -1)),
        num_keep=int(options.get("num_keep", 4)),
        shift=body.get("shift", True) is not False,
        stop=[stop] if isinstance(stop, str) else list(stop),
        grammar=grammar,
        logprobs=bool(body.get("logprobs")),
        top_logprobs=int(body.get("top_logprobs") or 0),
    )


def _model(request: Request, name_text: Any, missing_status: int, missing_message: str) -> StoredModel:
    if not isinstance(name_text, str) or not name_text:
        raise APIError(missing_message, missing_status)
    name = parse_name(name_text)
    if not name.is_valid:
        raise APIError("invalid model name", 400)
    try:
        return load_model(store_of(request), name)
    except ModelNotFound as e:
        raise APIError(f"model '{name_text}' not found", 404) from e


def _template(model: StoredModel, override: Any) -> Any:
    if override:
        try:
            return parse_template(str(override))
        except TemplateError as e:
            raise APIError(f"template error: {e}", 400) from e
    if model.template is None:
        raise APIError(f"template error: the template of {model.short_name} does not parse", 500)
    return model.template


def _check_think(model: StoredModel, think: bool | str | None) -> bool | str | None:
    """The request's ``think``, validated; a thinking model thinks unless told not to (Ollama)."""
    if think and "thinking" not in model.capabilities:
        raise APIError(f'"{model.short_name}" does not support thinking', 400)
    if think is None and "thinking" in model.capabilities:
        return True
    return think


def _thinking_parser(template: Any, think: bool | str | None, prompt_text: str) -> ThinkingParser | None:
    """A splitter for the model's thinking block, when thinking is on (None otherwise)."""
    if not think or template is None or "thinking" not in template.vars():
        return None
    parser = ThinkingParser(*infer_tags(template.source))
    if prompt_text.rstrip().endswith(parser.opening):
        parser.start_inside()
    return parser


def _check_images(model: StoredModel, images: Any) -> None:
    """Images are refused: a text-only model cannot see them, and llamita has no multimodal
    (projector) path yet, so a vision model would answer about an image it never saw."""
    if not images:
        return
    if "vision" not in model.capabilities:
        raise APIError(f"{model.name} does not support vision (images were sent to a text-only model)", 400)
    raise APIError(f"{model.name} has the vision capability, but llamita cannot give it images yet", 400)


def _check_context_ids(context: list[int], n_vocab: int) -> None:
    """Token ids the model does not have would fail the whole batch in ``llama_decode``."""
    for token in context:
        if not 0 <= token < n_vocab:
            raise APIError(
                f"invalid context: token {token} is not in the model's vocabulary (0 to {n_vocab - 1})", 400
            )


def _typed(check: Any, value: Any) -> Any:
    """A :mod:`request_types` check, its failure as a 400."""
    try:
        return check(value)
    except UnmarshalError as e:
        raise APIError(str(e), 400) from e


@dataclass
class _Timing:
    start: float
    load: float = 0.0


async def _acquire(
    request: Request, model: StoredModel, options: dict[str, Any], keep_alive: float | None, timing: _Timing
) -> Runner:
    before = time.monotonic()
    try:
        runner = await runners_of(request).acquire(model, options, keep_alive)
    except QueueFull as e:
        raise APIError(str(e), 503) from e
    except Exception as e:
        raise APIError(f"failed to load model {model.short_name}: {e}", 500) from e
    timing.load = time.monotonic() - before
    return runner


def _stats(done: Done, timing: _Timing) -> dict[str, Any]:
    stats = {
        "total_duration": int((time.monotonic() - timing.start) * 1e9),
        "load_duration": int(timing.load * 1e9),
        "prompt_eval_count": done.prompt_eval_count,
        "prompt_eval_duration": done.prompt_eval_duration,
        "prompt_cache_tokens": done.prompt_cache_tokens,
        "eval_count": done.eval_count,
        "eval_duration": done.eval_duration,
    }
    return {k: v for k, v in stats.items() if v}


def _done_reason(done: Done) -> str:
    return "length" if done.reason == FinishReason.LENGTH else "stop"


def _check_finished(done: Done) -> None:
    """A request that did not finish is an error, never a truncated success: a superseded or
    aborted one is a 499 (before the first byte) or a last ``{"error"}`` line (after it)."""
    if done.reason == FinishReason.ERROR:
        raise APIError(done.error or "generation failed", 500)
    if done.reason == FinishReason.ABORTED:
        raise APIError(done.error or CANCELED, 499)


async def _events(
    request: Request,
    runner: Runner,
    prompt: list[int],
    params: SamplingParams,
) -> AsyncIterator[Token | Done]:
    observer = request.app.state.metrics.observe(runner.model.short_name)
    try:
        events = runner.engine.generate(prompt, params, request.headers.get(SESSION_HEADER))
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, Token):
                    observer.token()
                yield event
    except QueueFull as e:
        raise APIError(str(e), 503) from e
    finally:
        observer.finish(runner.engine)


# ---- /api/generate -----------------------------------------------------------------------
async def run_generate(request: Request, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    timing = _Timing(time.monotonic())
    context = _typed(check_generate, body)
    top = body.get("top_logprobs")
    if top is not None and not (isinstance(top, int) and 0 <= top <= 20):
        raise APIError("top_logprobs must be between 0 and 20", 400)
    name_text = body.get("model") or ""
    model = _model(request, name_text, 404, f"model '{name_text}' not found")
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    prompt = body.get("prompt") or ""
    base = {"model": name_text, "created_at": ""}
    if not prompt and keep_alive == 0:
        await runners_of(request).expire(model)
        yield {**base, "created_at": now_rfc3339(), "response": "", "done": True, "done_reason": "unload"}
        return
    raw = bool(body.get("raw"))
    if raw and (body.get("template") or body.get("system") or context):
        raise APIError("raw mode does not support template, system, or context", 400)
    if "completion" not in model.capabilities:
        raise APIError(f'"{model.short_name}" does not support generate', 400)
    suffix = body.get("suffix") or ""
    if suffix and "insert" not in model.capabilities:
        raise APIError(f"{model.name} does not support insert", 400)
    think = _check_think(model, parse_think(body.get("think")))
    _check_images(model, body.get("images"))
    options = merged_options(model, body.get("options"))
    grammar = parse_format(body.get("format"))
    if grammar and body.get("think") is None:
        think = False  # a grammar leaves no room for a thinking block; Ollama's two-pass run is not done
    template = None if raw else _template(model, body.get("template"))

    def render() -> str:
        if raw:
            return prompt
        return _render_generate(template, model, body, prompt, suffix, think, bool(context))

    if body.get("_debug_render_only"):
        text = await asyncio.to_thread(render)
        yield {
            **base,
            "created_at": now_rfc3339(),
            "response": "",
            "done": True,
            "_debug_info": {"rendered_template": text, "image_count": len(body.get("images") or [])},
        }
        return

    runner = await _acquire(request, model, options, keep_alive, timing)
    try:
        if not prompt:
            yield {**base, "created_at": now_rfc3339(), "response": "", "done": True, "done_reason": "load"}
            return
        engine = runner.engine
        _check_context_ids(context, engine.model.n_vocab)

        def prompt_tokens() -> tuple[str, list[int]]:
            text = render()
            return text, dedupe_bos(engine.model.tokenize(text), engine.model.bos)

        text, tokens = await asyncio.to_thread(prompt_tokens)  # a long render must not stall the server
        if context and not raw:
            tokens = list(context) + tokens[1 if engine.model.add_bos else 0 :]
        if not tokens:
            raise APIError(EMPTY_PROMPT, 400)
        tokens = _fit(tokens, _context_limit(runner, options), options, body)
        params = sampling_params(options, grammar, body)
        splitter = None if raw else _thinking_parser(template, think, text)
        logprobs: list[dict[str, Any]] = []

        def chunk(thinking: str, response: str) -> dict[str, Any] | None:
            nonlocal logprobs
            if not (thinking or response or logprobs):
                return None  # all held back (it may be the start of a tag)
            out = {**base, "created_at": now_rfc3339(), "response": response}
            if thinking:
                out["thinking"] = thinking
            out["done"] = False
            _with_logprobs(out, logprobs)
            logprobs = []
            return out

        async for event in _events(request, runner, tokens, params):
            if isinstance(event, Token):
                logprobs += event.logprobs
                part = chunk(*(splitter.feed(event.text) if splitter else ("", event.text)))
                if part is not None:
                    yield part
                continue
            _check_finished(event)
            if splitter is not None:
                part = chunk(*splitter.flush())
                if part is not None:
                    yield part
            final = {
                **base,
                "created_at": now_rfc3339(),
                "response": "",
                "done": True,
                "done_reason": _done_reason(event),
            }
            _with_logprobs(final, logprobs)
            if not raw:
                final["context"] = event.context
            final.update(_stats(event, timing))
            yield final
    finally:
        runners_of(request).release(runner)


def _render_generate(
    template: Any,
    model: StoredModel,
    body: dict[str, Any],
    prompt: str,
    suffix: str,
    think: bool | str | None,
    has_context: bool,
) -> str:
    try:
        return generate_text(
            template,
            prompt=prompt,
            suffix=suffix,
            system=body.get("system") or "",
            model_system=model.system,
            model_messages=model.messages,
            has_context=has_context,
            think=think,
        )
    except TemplateError as e:
        raise APIError(f"template error: {e}", 400) from e


# ---- /api/chat ---------------------------------------------------------------------------
async def run_chat(request: Request, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    timing = _Timing(time.monotonic())
    messages = _typed(check_messages, body.get("messages"))
    tools = _typed(check_tools, body.get("tools")) or None
    top = body.get("top_logprobs")
    if top is not None and not (isinstance(top, int) and 0 <= top <= 20):
        raise APIError("top_logprobs must be between 0 and 20", 400)
    name_text = body.get("model") or ""
    model = _model(request, name_text, 400, "model is required")
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    base = {"model": name_text, "created_at": ""}
    if not messages and keep_alive == 0:
        await runners_of(request).expire(model)
        yield {
            **base,
            "created_at": now_rfc3339(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "unload",
        }
        return
    if tools and "tools" not in model.capabilities:
        raise APIError(f"{model.name} does not support tools", 400)
    if "completion" not in model.capabilities:
        raise APIError(f'"{model.short_name}" does not support chat', 400)
    think = _check_think(model, parse_think(body.get("think")))
    for m in messages:
        _check_images(model, m.get("images"))
    options = merged_options(model, body.get("options"))
    grammar = parse_format(body.get("format"))
    if grammar and body.get("think") is None:
        think = False  # a grammar leaves no room for a thinking block; Ollama's two-pass run is not done
    template = _template(model, None)

    runner = None
    if not body.get("_debug_render_only"):
        runner = await _acquire(request, model, options, keep_alive, timing)
    try:
        if not messages:
            yield {
                **base,
                "created_at": now_rfc3339(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "load",
            }
            return
        num_ctx = _context_limit(runner, options) if runner else int(options.get("num_ctx") or 4096)
        tokenized: dict[str, list[int]] = {}  # truncation tokenizes the kept chat: reused below

        def tokenize(text: str) -> list[int]:
            if text not in tokenized:
                tokenized[text] = runner.engine.model.tokenize(text) if runner else [0] * (len(text) // 4)
            return tokenized[text]

        def render() -> str:
            try:
                return chat_text(
                    template,
                    messages,
                    model_system=model.system,
                    model_messages=model.messages,
                    tools=tools,
                    think=think,
                    num_ctx=num_ctx,
                    tokenize=tokenize,
                    truncate=body.get("truncate", True) is not False,
                )
            except TemplateError as e:
                raise APIError(f"template error: {e}", 400) from e

        # Rendering and tokenizing a long chat takes a while: off the event loop, so every other
        # request (and /api/version) is still served meanwhile.
        text = await asyncio.to_thread(render)
        if runner is None:
            yield {
                **base,
                "created_at": now_rfc3339(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "_debug_info": {"rendered_template": text, "image_count": 0},
            }
            return
        model_bos = runner.engine.model.bos
        tokens = dedupe_bos(await asyncio.to_thread(tokenize, text), model_bos)
        if not tokens:
            raise APIError(EMPTY_PROMPT, 400)
        tokens = _fit(tokens, _context_limit(runner, options), options, body)
        params = sampling_params(options, grammar, body)
        # With tools, text that may be a tool call is held back until parsed (Ollama's tools.Parser).
        tool_parser = ToolParser(template, tools) if tools else None
        splitter = _thinking_parser(template, think, text)
        logprobs: list[dict[str, Any]] = []

        def deltas(thinking: str, content: str) -> list[dict[str, Any]]:
            out = [{"role": "assistant", "content": "", "thinking": thinking}] if thinking else []
            if tool_parser is not None:
                return out + chat_messages(*tool_parser.feed(content))
            return out + ([{"role": "assistant", "content": content}] if content else [])

        async for event in _events(request, runner, tokens, params):
            if isinstance(event, Token):
                logprobs += event.logprobs  # sent with the next chunk (tool-call text may be held back)
                for message in deltas(*(splitter.feed(event.text) if splitter else ("", event.text))):
                    chunk = {**base, "created_at": now_rfc3339(), "message": message, "done": False}
                    yield _with_logprobs(chunk, logprobs)
                    logprobs = []
                continue
            _check_finished(event)
            messages = deltas(*splitter.flush()) if splitter else []
            if tool_parser is not None:
                messages += chat_messages(*tool_parser.flush())
            for message in messages:
                chunk = {**base, "created_at": now_rfc3339(), "message": message, "done": False}
                yield _with_logprobs(chunk, logprobs)
                logprobs = []
            final = {
                **base,
                "created_at": now_rfc3339(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": _done_reason(event),
            }
            _with_logprobs(final, logprobs)
            final.update(_stats(event, timing))
            yield final
    finally:
        if runner is not None:
            runners_of(request).release(runner)


# ---- /api/embed and /api/embeddings ------------------------------------------------------
def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    if not math.isfinite(norm):
        raise APIError("embedding contains NaN or Inf values", 500)
    return [x / norm for x in vector] if norm > 0 else vector


async def run_embed(request: Request, body: dict[str, Any], *, legacy: bool = False) -> dict[str, Any]:
    timing = _Timing(time.monotonic())
    prompt = body.get("prompt")
    if legacy and prompt is not None and not isinstance(prompt, str):
        raise APIError(str(unmarshal_error(prompt, "EmbeddingRequest", "prompt", "string")), 400)
    name_text = body.get("model") or ""
    if legacy and not name_text:
        raise APIError("model is required", 400)
    model = _model(request, name_text, 404, f'model "{name_text}" not found, try pulling it first')
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    if legacy:
        inputs = [prompt] if prompt else []
    else:
        raw_input = body.get("input")
        if isinstance(raw_input, str):
            inputs = [raw_input] if raw_input else []
        elif isinstance(raw_input, list) and all(isinstance(x, str) for x in raw_input):
            inputs = list(raw_input)
        elif raw_input is None:
            inputs = []
        else:
            raise APIError("invalid input type", 400)
    options = merged_options(model, body.get("options"))
    runner = await _acquire(request, model, options, keep_alive, timing)
    try:
        tokenize = runner.engine.model.tokenize
        tokenized = await asyncio.to_thread(lambda: [tokenize(text, special=False) for text in inputs])
        truncate = body.get("truncate", True) is not False
        limit = runner.num_ctx
        if any(len(t) > limit for t in tokenized):
            if not truncate:
                raise APIError("the input length exceeds the context length", 400)
            tokenized = [t[:limit] for t in tokenized]
        from llamita.server.engine.core import EmbeddingError

        try:
            vectors = await runner.engine.embed(tokenized)
        except EmbeddingError as e:
            raise APIError(str(e), 400) from e
    finally:
        runners_of(request).release(runner)
    if legacy:
        return {"embedding": vectors[0] if vectors else []}
    dims = body.get("dimensions")
    out = []
    for vector in vectors:
        vector = _normalise(vector)
        if isinstance(dims, int) and 0 < dims < len(vector):
            vector = _normalise(vector[:dims])
        out.append(vector)
    return {
        "model": name_text,
        "embeddings": out,
        "total_duration": int((time.monotonic() - timing.start) * 1e9),
        "load_duration": int(timing.load * 1e9),
        "prompt_eval_count": sum(len(t) for t in tokenized),
    }


def _context_limit(runner: Runner, options: dict[str, Any]) -> int:
    """The context a prompt is cut to: the request's ``num_ctx`` even on a larger loaded runner.

    A loaded model with a larger context is reused instead of reloaded (unlike Ollama), but the
    prompt is still fitted to what the request asked for, as Ollama's reload would have done:
    a 300-turn chat at ``num_ctx`` 512 must not become a 2k-token prefill.
    """
    requested = int(options.get("num_ctx") or 0)
    return min(runner.num_ctx, requested) if requested > 0 else runner.num_ctx


def _fit(tokens: list[int], num_ctx: int, options: dict[str, Any], body: dict[str, Any]) -> list[int]:
    """The prompt cut to the context as Ollama does (``num_keep``, ``truncate``), or a 400."""
    try:
        return fit_tokens(
            tokens, num_ctx, int(options.get("num_keep", 4)), body.get("truncate", True) is not False
        )
    except PromptTooLong as e:
        raise APIError(str(e), 400) from e


# ---- HTTP handlers -----------------------------------------------------------------------
async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, awaitable: Any) -> tuple[bool, Any]:
    """Await ``awaitable`` unless the client goes away first: (finished, result)."""
    task = asyncio.ensure_future(awaitable)
    watcher = asyncio.ensure_future(_wait_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task in done:
        return True, task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return False, None


def _failure(e: Exception) -> tuple[str, int]:
    """The message and status of a failed request; an unexpected exception is logged (a bug)."""
    if isinstance(e, APIError):
        return str(e), e.status
    log.error("inference request failed", exc_info=e)
    return str(e) or type(e).__name__, 500


async def _stream_or_collect(
    request: Request, body: dict[str, Any], events: AsyncIterator[dict[str, Any]], merge: str
) -> Response:
    # Waiting for the first object can take a whole prefill: a client that leaves meanwhile
    # (an editor that typed on) must cancel the request, queued or running.
    finished, first_task = await until_disconnect(request, events.__anext__())
    if not finished:
        return error_response(CANCELED, 499)
    try:
        first = first_task.result()
    except StopAsyncIteration:
        return error_response(CANCELED, 499)
    except Exception as e:
        return error_response(*_failure(e))

    if body.get("stream") is not False:

        async def lines() -> AsyncIterator[bytes]:
            async with contextlib.aclosing(events):
                yield _line(first)
                try:
                    async for chunk in events:
                        yield _line(chunk)
                except Exception as e:  # after the first line only the body can say it failed
                    yield _line({"error": _failure(e)[0]})

        return StreamingResponse(lines(), media_type=NDJSON)

    async def collect() -> dict[str, Any]:
        chunks = [first]
        async with contextlib.aclosing(events):
            async for chunk in events:
                chunks.append(chunk)
        return _merge(chunks, merge)

    finished, task = await until_disconnect(request, collect())
    if not finished:
        return error_response(CANCELED, 499)
    try:
        return JSONResponse(task.result())
    except Exception as e:
        return error_response(*_failure(e))


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _with_logprobs(chunk: dict[str, Any], logprobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Ollama's ``logprobs`` field (``omitempty``): the entries of the tokens in this chunk."""
    if logprobs:
        chunk["logprobs"] = list(logprobs)
    return chunk


def _merge(chunks: list[dict[str, Any]], field: str) -> dict[str, Any]:
    final = dict(chunks[-1])
    logprobs = [entry for c in chunks for entry in c.get("logprobs") or []]
    if logprobs:
        final["logprobs"] = logprobs
    if field == "response":
        final["response"] = "".join(c.get("response", "") for c in chunks)
        thinking = "".join(c.get("thinking", "") for c in chunks)
        if thinking:
            final["thinking"] = thinking
    else:
        message = dict(final.get("message") or {"role": "assistant"})
        message["content"] = "".join((c.get("message") or {}).get("content", "") for c in chunks)
        thinking = "".join((c.get("message") or {}).get("thinking", "") for c in chunks)
        if thinking:
            message["thinking"] = thinking
        calls = [call for c in chunks for call in (c.get("message") or {}).get("tool_calls") or []]
        if calls:
            message["tool_calls"] = calls
        final["message"] = message
    return final


async def generate(request: Request) -> Response:
    body = await read_json(request)
    return await _stream_or_collect(request, body, run_generate(request, body), "response")


async def chat(request: Request) -> Response:
    body = await read_json(request)
    return await _stream_or_collect(request, body, run_chat(request, body), "message")


async def embed(request: Request) -> Response:
    body = await read_json(request)
    return JSONResponse(await run_embed(request, body))


async def embeddings(request: Request) -> Response:
    body = await read_json(request)
    return JSONResponse(await run_embed(request, body, legacy=True))


async def ps(request: Request) -> Response:
    """Ollama's loaded-model list; beyond Ollama, ``healthy`` (and ``failure`` when false): an
    engine that stopped is reloaded by the model's next request."""
    models = []
    for runner in runners_of(request).ps():
        name = runner.model.name
        expires = runner.expires_at if math.isfinite(runner.duration) else 253402300799.0
        size, size_vram = runner.sizes()
        entry = {
            "name": name.shortest,
            "model": name.shortest,
            "size": size,
            "digest": runner.model.manifest.digest,
            "details": runner.model.details(),
            "expires_at": rfc3339(min(expires, 253402300799.0)),
            "size_vram": size_vram,
            "context_length": runner.num_ctx,
            "healthy": runner.healthy,
        }
        if not runner.healthy:
            entry["failure"] = runner.failure
        models.append(entry)
    return JSONResponse({"models": models})
