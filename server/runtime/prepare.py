"""The steps of the prologue a generate or chat request goes through before the engine runs.

Each step checks one thing in Ollama's order and raises a domain error (:mod:`.errors`) with
Ollama's message; :mod:`.generate` calls them in sequence.  Nothing here knows HTTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from llamita.server.engine import CANCELED, Done, FinishReason, GrammarError, SamplingParams, format_grammar
from llamita.server.gocompat.fmt import quote
from llamita.server.gocompat.time import parse_duration
from llamita.server.model.model import ModelNotFound, StoredModel, load_model
from llamita.server.options import OptionError, merge_options
from llamita.server.prompt.fit import fit_tokens
from llamita.server.prompt.thinking import ThinkingParser, infer_tags
from llamita.server.store.blobs import Store
from llamita.server.store.names import parse_model_ref
from llamita.server.template import TemplateError
from llamita.server.template import parse as parse_template

from .errors import Canceled, Failed, InvalidRequest, ModelMissing
from .runners import Runner

_THINK_LEVELS = ("low", "medium", "high", "max")
KEEP_ALIVE_TYPE = "keep_alive must be a duration string or a number of seconds"


def parse_keep_alive(value: Any) -> float | None:
    """Seconds (negative = forever), or None when absent; Ollama's Duration JSON rules."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRequest(KEEP_ALIVE_TYPE)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as e:
            raise InvalidRequest(str(e)) from e
    raise InvalidRequest(KEEP_ALIVE_TYPE)


def parse_format(value: Any) -> str | None:
    """``"json"`` → JSON grammar, a JSON-schema object → its grammar, empty → none."""
    try:
        return format_grammar(value)
    except GrammarError as e:
        raise InvalidRequest(str(e)) from e


def parse_think(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _THINK_LEVELS:
        return value
    raise InvalidRequest(
        f'invalid think value: "{value}" (must be "true", "false", "low", "medium", "high", "max")'
    )


def merged_options(model: StoredModel, requested: Any) -> dict[str, Any]:
    """DefaultOptions ← model PARAMETERs ← request options, typed and clamped (see ``merge_options``)."""
    try:
        return merge_options(model.options, requested)
    except OptionError as e:
        raise InvalidRequest(str(e)) from e


def sampling_params(
    options: dict[str, Any], grammar: str | None, *, shift: bool, logprobs: bool, top_logprobs: int
) -> SamplingParams:
    """Engine sampling from merged options (and the request's ``logprobs``/``top_logprobs``)."""
    stop = options.get("stop") or []
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
        shift=shift,
        stop=[stop] if isinstance(stop, str) else list(stop),
        grammar=grammar,
        logprobs=logprobs,
        top_logprobs=top_logprobs,
    )


def resolve_model(store: Store, name_text: Any, missing: Exception) -> StoredModel:
    """The named model; ``missing`` is raised when no name was given (each route words it)."""
    if not isinstance(name_text, str) or not name_text.strip():
        raise missing
    name = parse_model_ref(name_text)  # "name:local" is the local "name"
    if not name.is_valid:
        raise InvalidRequest("invalid model name")
    try:
        return load_model(store, name)
    except ModelNotFound as e:
        raise ModelMissing(f"model '{name_text}' not found") from e


def template_of(model: StoredModel, override: Any) -> Any:
    if override:
        try:
            return parse_template(str(override))
        except TemplateError as e:
            raise InvalidRequest(f"template error: {e}") from e
    if model.template is None:
        raise Failed(f"template error: the template of {model.short_name} does not parse")
    return model.template


def check_think(model: StoredModel, think: bool | str | None, asked: str = "") -> bool | str | None:
    """The request's ``think``, validated; a thinking model thinks unless told not to (Ollama)."""
    if think and "thinking" not in model.capabilities:
        raise InvalidRequest(f"{quote(asked or model.short_name)} does not support thinking")
    if think is None and "thinking" in model.capabilities:
        return True
    return think


def thinking_parser(template: Any, think: bool | str | None, prompt_text: str) -> ThinkingParser | None:
    """A splitter for the model's thinking block, when thinking is on (None otherwise)."""
    if not think or template is None or "thinking" not in template.vars():
        return None
    parser = ThinkingParser(*infer_tags(template.source))
    if prompt_text.rstrip().endswith(parser.opening):
        parser.start_inside()
    return parser


def check_images(model: StoredModel, images: Any) -> None:
    """Images are refused: a text-only model cannot see them, and llamita has no multimodal
    (projector) path yet, so a vision model would answer about an image it never saw."""
    if not images:
        return
    if "vision" not in model.capabilities:
        raise InvalidRequest(f"{model.name} does not support vision (images were sent to a text-only model)")
    raise InvalidRequest(f"{model.name} has the vision capability, but llamita cannot give it images yet")


def check_context_ids(context: list[int], n_vocab: int) -> None:
    """Token ids the model does not have would fail the whole batch in ``llama_decode``."""
    for token in context:
        if not 0 <= token < n_vocab:
            raise InvalidRequest(
                f"invalid context: token {token} is not in the model's vocabulary (0 to {n_vocab - 1})"
            )


def context_limit(runner: Runner, options: dict[str, Any]) -> int:
    """The context a prompt is cut to: the request's ``num_ctx`` even on a larger loaded runner.

    A loaded model with a larger context is reused instead of reloaded (unlike Ollama), but the
    prompt is still fitted to what the request asked for, as Ollama's reload would have done:
    a 300-turn chat at ``num_ctx`` 512 must not become a 2k-token prefill.
    """
    requested = int(options.get("num_ctx") or 0)
    return min(runner.num_ctx, requested) if requested > 0 else runner.num_ctx


def fit(tokens: list[int], num_ctx: int, options: dict[str, Any], truncate: bool) -> list[int]:
    """The prompt cut to the context as Ollama does (``num_keep``, ``truncate``), or PromptTooLong."""
    return fit_tokens(tokens, num_ctx, int(options.get("num_keep", 4)), truncate)


@dataclass
class Timing:
    start: float
    load: float = 0.0

    def stats(self, done: Done) -> dict[str, Any]:
        """Ollama's durations and counts of a finished request (``omitempty``)."""
        stats = {
            "total_duration": int((time.monotonic() - self.start) * 1e9),
            "load_duration": int(self.load * 1e9),
            "prompt_eval_count": done.prompt_eval_count,
            "prompt_eval_duration": done.prompt_eval_duration,
            "prompt_cache_tokens": done.prompt_cache_tokens,
            "eval_count": done.eval_count,
            "eval_duration": done.eval_duration,
        }
        return {k: v for k, v in stats.items() if v}


def done_reason(done: Done) -> str:
    return "length" if done.reason == FinishReason.LENGTH else "stop"


def check_finished(done: Done) -> None:
    """A request that did not finish is an error, never a truncated success: a superseded or
    aborted one is a 499 (before the first byte) or a last ``{"error"}`` line (after it)."""
    if done.reason == FinishReason.ERROR:
        raise Failed(done.error or "generation failed")
    if done.reason == FinishReason.ABORTED:
        raise Canceled(done.error or CANCELED)
