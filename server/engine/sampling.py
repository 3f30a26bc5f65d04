"""Per-sequence sampling (llama.cpp sampler chains) and stop-aware incremental text output.

Sampling runs inside llama.cpp: each request owns a sampler chain built from its options,
so a step samples every sequence with one C call each.  Text is produced incrementally:
bytes are decoded as UTF-8 across token boundaries, and text that could be the start of a
stop string is held back until it is known not to be one, so stop strings are never echoed.
"""

from __future__ import annotations

import codecs
import ctypes
import json
import math
import random
import re
from collections.abc import Callable

import llama_cpp as ll
import numpy as np

from .request import SamplingParams


class GrammarError(ValueError):
    """Raised when llama.cpp rejects a grammar (e.g. one built from an invalid JSON schema)."""


# llama.cpp parses a grammar recursively, a few hundred bytes of C stack per nesting level: a
# schema grammar some 15,000 levels deep (``{"maxLength": 20000}``) overflows an 8 MiB stack and
# kills the process, so deeper grammars and the counts in a schema that build them are refused.
MAX_GRAMMAR_NESTING = 4096
_GRAMMAR_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|[()]|[^"\[()]+', re.S)
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_QUANTIFIER = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")


def grammar_nesting(grammar: str) -> int:
    """How deep ``grammar``'s parentheses nest (literals and character classes do not count)."""
    depth = deepest = 0
    for match in _GRAMMAR_TOKEN.finditer(grammar):
        if match.group(0) == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif match.group(0) == ")":
            depth -= 1
    return deepest


def check_schema_bounds(schema: object) -> None:
    """Refuse a JSON schema whose counts (``maxLength``, ``maxItems``, a pattern's ``{n}``) exceed
    :data:`MAX_GRAMMAR_NESTING`: the converter spells them out, so its grammar (and the memory and
    time it takes to build) grows with them. Raises :class:`GrammarError`."""
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending += node
        if not isinstance(node, dict):
            continue
        pending += node.values()
        counts = [node.get(key) for key in _COUNTS]
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            # A count of ten digits is over the limit anyway (and int() refuses thousands of digits).
            counts += [int(n[:10]) for m in _QUANTIFIER.finditer(pattern) for n in m.groups() if n]
        if any(isinstance(n, int | float) and n > MAX_GRAMMAR_NESTING for n in counts):
            raise GrammarError(f"a count in the schema is over llamita's limit of {MAX_GRAMMAR_NESTING}")


def grammar_compiles(grammar: str) -> bool:
    """Whether llama.cpp's grammar parser accepts ``grammar`` (``{"enum": []}`` gives one it rejects).

    Schema grammars name no tokens, so no vocabulary is needed: the API checks a ``format``
    before a model is loaded, and the engine never sees a grammar that fails.
    """
    if grammar_nesting(grammar) > MAX_GRAMMAR_NESTING:
        return False
    sampler = ll.llama_sampler_init_grammar(None, grammar.encode(), b"root")
    if not sampler:
        return False
    ll.llama_sampler_free(sampler)
    return True


FORMAT_EXPECTED = 'expected "json" or a valid JSON Schema object'


def format_grammar(value: object) -> str | None:
    """The grammar of a request's ``format``: ``"json"``, a JSON-schema object, or none when empty.

    Raises :class:`GrammarError` with Ollama's ``invalid format: ...`` message otherwise.
    """
    if value in (None, "", "null"):
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if value == "json":
        return JSON_GBNF
    if not isinstance(value, dict):
        raise GrammarError(f"invalid format: {json.dumps(value)}; {FORMAT_EXPECTED}")
    try:
        check_schema_bounds(value)
        grammar = json_schema_to_gbnf(json.dumps(value))
    except Exception as e:
        raise GrammarError(f"invalid format: {e}; {FORMAT_EXPECTED}") from e
    if not grammar_compiles(grammar):
        raise GrammarError(
            f"invalid format: llama.cpp cannot compile the grammar of the schema {json.dumps(value)}; "
            + FORMAT_EXPECTED
        )
    return grammar


_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])  # llama_token_data
assert _TOKEN_DATA.itemsize == ctypes.sizeof(ll.llama_token_data)


class Sampler:
    """A llama.cpp sampler chain for one request, with its grammar (``format``) checked lazily.

    Every ``init_*`` call is checked against llama.h of the pinned llama-cpp-python (0.3.36):
    ``penalties(n_vocab, last_n, repeat, freq, present)``, ``mirostat(n_vocab, seed, tau, eta, m)``,
    ``mirostat_v2(seed, tau, eta)``, ``top_p/min_p/typical(p, min_keep)``, ``top_k(k)``,
    ``temp(t)``, ``dist(seed)``, ``grammar(vocab, text, root)``.  If any of them fails, the
    half-built chain is freed before the error reaches the engine (which fails only this request).

    A grammar over the whole vocabulary costs 7-13 ms a token at 49k tokens, serial on the
    engine thread, so, as llama-server's ``common_sampler`` does, it is not in the chain: the
    chain samples, the grammar checks that one token, and only a rejected token makes the
    grammar run over every candidate before the chain samples again.  With greedy sampling
    the result is the grammar-first (eager) one; ``lazy_grammar = False`` keeps the eager chain.
    """

    lazy_grammar = True

    def __init__(
        self,
        vocab: ctypes.c_void_p,
        params: SamplingParams,
        n_vocab: int,
        n_ctx_seq: int = 0,
        *,
        lazy_grammar: bool | None = None,
    ) -> None:
        chain_params = ll.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        self._chain = ll.llama_sampler_chain_init(chain_params)
        self._penalties = None
        self._grammar = None  # the lazy grammar, outside the chain (freed by ``close``)
        self._lazy = self.lazy_grammar if lazy_grammar is None else lazy_grammar
        self._n_vocab = n_vocab
        self.resampled = 0  # tokens the grammar rejected, so sampled again with it applied first
        # Ollama: repeat_last_n -1 = the context length, 0 = no penalties.
        self._last_n = (n_ctx_seq or n_vocab) if params.repeat_last_n == -1 else max(params.repeat_last_n, 0)
        try:
            self._build(vocab, params, n_vocab)
        except BaseException:
            self.close()
            raise

    def _build(self, vocab: ctypes.c_void_p, params: SamplingParams, n_vocab: int) -> None:
        add = lambda s: ll.llama_sampler_chain_add(self._chain, s)  # noqa: E731

        if params.grammar:
            grammar = ll.llama_sampler_init_grammar(vocab, params.grammar.encode(), b"root")
            if not grammar:
                raise GrammarError("invalid grammar for format")
            if self._lazy:
                self._grammar = grammar
                self._prepare_lazy()
            else:
                add(grammar)
        penalised = params.repeat_penalty != 1.0 or params.frequency_penalty or params.presence_penalty
        if penalised and self._last_n > 0:
            self._penalties = ll.llama_sampler_init_penalties(
                n_vocab,
                self._last_n,
                params.repeat_penalty,
                params.frequency_penalty,
                params.presence_penalty,
            )
            add(self._penalties)
        seed = params.seed if params.seed >= 0 else random.getrandbits(32)
        if params.temperature <= 0:
            add(ll.llama_sampler_init_greedy())
        elif params.mirostat == 1:
            add(ll.llama_sampler_init_temp(params.temperature))
            add(ll.llama_sampler_init_mirostat(n_vocab, seed, params.mirostat_tau, params.mirostat_eta, 100))
        elif params.mirostat == 2:
            add(ll.llama_sampler_init_temp(params.temperature))
            add(ll.llama_sampler_init_mirostat_v2(seed, params.mirostat_tau, params.mirostat_eta))
        else:
            if params.top_k > 0:
                add(ll.llama_sampler_init_top_k(params.top_k))
            if 0 < params.typical_p < 1:
                add(ll.llama_sampler_init_typical(params.typical_p, 1))
            if 0 < params.top_p < 1:
                add(ll.llama_sampler_init_top_p(params.top_p, 1))
            if params.min_p > 0:
                add(ll.llama_sampler_init_min_p(params.min_p, 1))
            add(ll.llama_sampler_init_temp(params.temperature))
            add(ll.llama_sampler_init_dist(seed))

    def _prepare_lazy(self) -> None:
        """The candidate arrays a lazy grammar needs: every token, and one token alone."""
        self._ids = np.arange(self._n_vocab, dtype=np.int32)
        self._data = np.zeros(self._n_vocab, dtype=_TOKEN_DATA)
        self._cur = ll.llama_token_data_array(
            data=self._data.ctypes.data_as(ll.llama_token_data_p), size=0, selected=-1, sorted=False
        )
        self._one = ll.llama_token_data()
        self._one_cur = ll.llama_token_data_array(
            data=ctypes.pointer(self._one), size=1, selected=-1, sorted=False
        )

    def accept_prompt(self, prompt: list[int]) -> None:
        """Let the penalties see the prompt's last ``repeat_last_n`` tokens, as llama-server does."""
        if self._penalties is not None:
            for token in prompt[-self._last_n :]:
                ll.llama_sampler_accept(self._penalties, token)

    def sample(self, ctx: ctypes.c_void_p, index: int) -> int:
        """Sample from the logits of batch entry ``index`` (this also accepts the token)."""
        if self._grammar is None:
            return int(ll.llama_sampler_sample(self._chain, ctx, index))
        cur = self._candidates(ctx, index)
        ll.llama_sampler_apply(self._chain, ctypes.byref(cur))
        token = self._selected(cur)
        if not self._allows(token):
            self.resampled += 1
            cur = self._candidates(ctx, index)
            ll.llama_sampler_apply(self._grammar, ctypes.byref(cur))
            ll.llama_sampler_apply(self._chain, ctypes.byref(cur))
            token = self._selected(cur)
            # The grammar allows no token at all: accepting one would abort the process.
            if not self._allows(token):
                raise GrammarError("the format's grammar allows no token here")
        # Sampling with apply accepted nothing: the grammar and the chain (its penalties) see
        # the chosen token exactly once, as llama_sampler_sample would have made them.
        ll.llama_sampler_accept(self._grammar, token)
        ll.llama_sampler_accept(self._chain, token)
        return token

    def _candidates(self, ctx: ctypes.c_void_p, index: int) -> ll.llama_token_data_array:
        """Every token with its raw logit at batch entry ``index`` (the chain reorders and cuts it)."""
        logits = ll.llama_get_logits_ith(ctx, index)
        if not logits:
            raise ValueError(f"no logits at batch entry {index}")
        self._data["id"] = self._ids
        self._data["logit"] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        self._data["p"] = 0.0
        cur = self._cur
        cur.size, cur.selected, cur.sorted = self._n_vocab, -1, False
        return cur

    @staticmethod
    def _selected(cur: ll.llama_token_data_array) -> int:
        if not 0 <= cur.selected < cur.size:
            raise ValueError("the sampler chain selected no token")
        return int(cur.data[cur.selected].id)

    def _allows(self, token: int) -> bool:
        """Whether the grammar accepts ``token`` next (llama.cpp sets a rejected logit to -inf)."""
        one, cur = self._one, self._one_cur
        one.id, one.logit, one.p = token, 1.0, 0.0
        cur.size, cur.selected, cur.sorted = 1, -1, False
        ll.llama_sampler_apply(self._grammar, ctypes.byref(cur))
        return one.logit != -math.inf

    def close(self) -> None:
        if self._chain is not None:
            ll.llama_sampler_free(self._chain)
            self._chain = None
        if self._grammar is not None:
            ll.llama_sampler_free(self._grammar)
            self._grammar = None


def token_logprobs(
    ctx: ctypes.c_void_p,
    index: int,
    n_vocab: int,
    token: int,
    top_n: int,
    piece: Callable[[int], bytes],
) -> dict[str, object]:
    """Ollama's logprob entry for ``token``: log-softmax of the model's raw logits at ``index``.

    Raw logits, as Ollama reports them: the distribution the model gave, before temperature,
    top-k/p or penalties reshaped it for sampling.
    """
    logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx, index), shape=(n_vocab,))
    peak = float(logits.max())
    log_total = peak + float(np.log(np.exp(logits - peak, dtype=np.float64).sum()))

    def entry(t: int) -> dict[str, object]:
        data = piece(t)
        text = data.decode("utf-8", errors="replace")
        return {"token": text, "logprob": float(logits[t]) - log_total, "bytes": list(data)}

    result = entry(token)
    if top_n > 0:
        top = np.argpartition(-logits, min(top_n, n_vocab - 1))[:top_n]
        top = top[np.argsort(-logits[top], kind="stable")]
        result["top_logprobs"] = [entry(int(t)) for t in top]
    return result


class TextStream:
    """Bytes of generated tokens → text, holding back anything that may begin a stop string."""

    def __init__(self, stops: list[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False
        self.matched = ""  # the stop string that stopped the text (the earliest one in it)
        self._emitted: list[str] = []

    @property
    def text(self) -> str:
        """Everything emitted so far (joined on demand: appending to a str is quadratic)."""
        return "".join(self._emitted)

    def push(self, data: bytes) -> str:
        """Feed one token's bytes; returns the text that is safe to emit now."""
        if self.stopped:
            return ""
        held = self._held + self._decoder.decode(data)
        for stop in self._stops:
            at = held.find(stop)
            if at >= 0:
                held = held[:at]
                self.stopped = True
                self.matched = stop
        if self.stopped:
            self._held = ""
            return self._emit(held)
        keep = self._partial_stop_length(held)
        self._held = held[len(held) - keep :] if keep else ""
        return self._emit(held[: len(held) - keep])

    def flush(self) -> str:
        """At the end of generation: whatever was held back was not a stop string."""
        if self.stopped:
            return ""
        rest = self._held + self._decoder.decode(b"", final=True)
        self._held = ""
        return self._emit(rest)

    def _emit(self, text: str) -> str:
        if text:
            self._emitted.append(text)
        return text

    def _partial_stop_length(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that is a proper prefix of a stop string."""
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best


def text_tokens(
    tokens: list[int],
    text: str,
    piece: Callable[[int], bytes],
    tokenize: Callable[..., list[int]],
) -> list[int]:
    """Tokens for ``text``, a prefix of what ``tokens`` spell (the text a stop string cut).

    Tokens are kept while their bytes are the text's; the part of a token before the stop
    string is tokenized again, and the stop string and anything after it are dropped.
    """
    data = text.encode("utf-8")
    kept, at = [], 0
    for token in tokens:
        chunk = piece(token)
        if at == len(data) or not data.startswith(chunk, at):
            break
        kept.append(token)
        at += len(chunk)
    rest = data[at:].decode("utf-8", "replace")
    return kept + (tokenize(rest, add_bos=False, special=False) if rest else [])
