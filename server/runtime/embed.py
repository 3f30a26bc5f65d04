"""``/api/embed`` and ``/api/embeddings``: inputs tokenized, cut to the context, pooled, normalised."""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from llamita.server.gocompat.fmt import quote

from .errors import Failed, InvalidRequest, ModelMissing
from .prepare import Timing, merged_options, parse_keep_alive, resolve_model
from .requests import EmbedRequest

if TYPE_CHECKING:
    from .generate import Runtime

Json = dict[str, Any]


def normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    if not math.isfinite(norm):
        raise Failed("embedding contains NaN or Inf values")
    return [x / norm for x in vector] if norm > 0 else vector


def _inputs(req: EmbedRequest) -> list[str]:
    if req.legacy:
        return [req.inputs] if req.inputs else []
    if isinstance(req.inputs, str):
        return [req.inputs] if req.inputs else []
    if isinstance(req.inputs, list) and all(isinstance(x, str) for x in req.inputs):
        return list(req.inputs)
    if req.inputs is None:
        return []
    raise InvalidRequest("invalid input type")


async def embed(runtime: Runtime, req: EmbedRequest, owner: str | None = None) -> Json:
    timing = Timing(time.monotonic())
    # Ollama's words: a blank name (each route its own), a name with no model ("try pulling it").
    blank = (
        InvalidRequest("model is required") if req.legacy else ModelMissing(f"model '{req.model}' not found")
    )
    try:
        model = resolve_model(runtime.store, req.model, blank)
    except ModelMissing as e:
        if e is blank:
            raise
        raise ModelMissing(f"model {quote(req.model)} not found, try pulling it first") from e
    keep_alive = parse_keep_alive(req.keep_alive)
    inputs = _inputs(req)
    options = merged_options(model, req.options)
    runner = await runtime.acquire(model, options, keep_alive, timing)
    try:
        engine = runner.engine
        tokenized = await asyncio.to_thread(lambda: [engine.tokenize(t, parse_special=False) for t in inputs])
        limit = runner.num_ctx
        if any(len(t) > limit for t in tokenized):
            if not req.truncate:
                raise InvalidRequest("the input length exceeds the context length")
            tokenized = [t[:limit] for t in tokenized]
        vectors = await engine.embed(tokenized)
        runtime.usage.record(owner, runner.model.short_name, prompt_tokens=sum(len(t) for t in tokenized))
    finally:
        runtime.runners.release(runner)
    if req.legacy:
        return {"embedding": vectors[0] if vectors else []}
    out = await asyncio.to_thread(_shaped, vectors, req.dimensions)  # many vectors: not on the loop
    return {
        "model": req.model,
        "embeddings": out,
        "total_duration": int((time.monotonic() - timing.start) * 1e9),
        "load_duration": int(timing.load * 1e9),
        "prompt_eval_count": sum(len(t) for t in tokenized),
    }


def _shaped(vectors: list[list[float]], dims: Any) -> list[list[float]]:
    """Unit vectors, cut to ``dimensions`` (and normalised again) when asked, as Ollama does."""
    out = []
    for vector in vectors:
        vector = normalise(vector)
        if isinstance(dims, int) and 0 < dims < len(vector):
            vector = normalise(vector[:dims])
        out.append(vector)
    return out
