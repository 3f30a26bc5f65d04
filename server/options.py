"""Ollama's model options: the typed table, its defaults and its two parsers.

Options reach the runtime from two directions with different strictness, as in Ollama
(``api/types.go``):

* Modelfile ``PARAMETER`` lines and the CLI's ``/set parameter`` carry *strings* and go
  through :func:`format_params` (Ollama's ``FormatParams``).  It is strict: an unknown name or
  an unparsable value is an error, because a typo in a Modelfile should fail loudly at create
  time rather than silently change nothing.
* Request ``options`` objects carry *JSON values* and go through
  :func:`validate_request_options` (Ollama's ``Options.FromMap``).  Unknown keys are only
  logged, because old clients still send options that Ollama has since removed; a known key
  with the wrong JSON type is an error.  Values that size memory, threads or loops are then
  clamped into :data:`RESOURCE_BOUNDS` (Ollama clamps these too rather than refusing them).
* ``/api/create``'s ``parameters`` object carries JSON values too, and goes through
  :func:`validate_parameters`: FromMap's type rules plus FormatParams' strictness about names,
  so a model whose every request would fail is never stored.

Merge order at request time is ``default_options()`` <- model parameters <- request options
(:func:`merge_options`).

llamita adds model-only parameters (:data:`MODEL_OPTION_TYPES`: ``num_parallel``,
``flash_attn``): a Modelfile PARAMETER or ``/api/create`` parameter sets them for one model,
but a request cannot (Ollama's options table lacks them, and a request that changed them
would reload the model under everyone else's requests), so request options drop them.
"""

from __future__ import annotations

import copy
import logging
import math
import re
import struct
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULTS",
    "DEPRECATED_OPTIONS",
    "MODEL_OPTION_TYPES",
    "OPTION_TYPES",
    "REMOVED_OPTIONS",
    "RESOURCE_BOUNDS",
    "RUNNER_OPTIONS",
    "OptionError",
    "default_options",
    "format_params",
    "merge_options",
    "validate_parameters",
    "validate_request_options",
]


class OptionError(ValueError):
    """An option name or value that Ollama would reject; ``str()`` is Ollama's message."""


# name -> Python type of the value.  ``list`` always means a list of strings.  Runner options
# come first (they are fixed when the model is loaded), then the per-request sampling options.
OPTION_TYPES: dict[str, type] = {
    "num_ctx": int,
    "num_batch": int,
    "num_gpu": int,
    "main_gpu": int,
    "use_mmap": bool,
    "num_thread": int,
    "draft_num_predict": int,
    "num_keep": int,
    "seed": int,
    "num_predict": int,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "typical_p": float,
    "repeat_last_n": int,
    "temperature": float,
    "repeat_penalty": float,
    "presence_penalty": float,
    "frequency_penalty": float,
    "stop": list,
}

# llamita's per-model knobs, set by a Modelfile PARAMETER only (see the module docstring):
# ``num_parallel`` requests decoded at once (env OLLAMA_NUM_PARALLEL is the default and
# LLAMITA_NUM_PARALLEL overrides it), ``flash_attn`` on/off (over OLLAMA_FLASH_ATTENTION).
MODEL_OPTION_TYPES: dict[str, type] = {"num_parallel": int, "flash_attn": bool}
MAX_NUM_PARALLEL = 128  # n_seq_max is twice this, and llama.cpp allows 256 sequences

# Options that need a runner reload when they differ from the loaded runner's.
RUNNER_OPTIONS: frozenset[str] = frozenset(
    {"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "draft_num_predict"}
)

# Ollama's DefaultOptions().  ``num_ctx`` 0 means "automatic" (OLLAMA_CONTEXT_LENGTH, else a
# VRAM tier chosen at load time); ``main_gpu``/``use_mmap`` None mean "let the runtime decide";
# ``num_gpu`` -1 means "offload as many layers as fit"; ``num_thread`` 0 means "auto".
# Treat this dict as read-only and call default_options() for a mutable copy.
DEFAULTS: dict[str, object] = {
    "num_ctx": 0,
    "num_batch": 512,
    "num_gpu": -1,
    "main_gpu": None,
    "use_mmap": None,
    "num_thread": 0,
    "draft_num_predict": 4,
    "num_keep": 4,
    "seed": -1,
    "num_predict": -1,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_last_n": 64,
    "temperature": 0.8,
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "stop": [],
}

# Names that Modelfiles written for older Ollama versions still use: Ollama only warns.
DEPRECATED_OPTIONS: frozenset[str] = frozenset(
    {
        "penalize_newline",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mlock",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
    }
)

# Names removed earlier (<= v0.9).  FormatParams rejects them as unknown; request options
# ignore them like any other unknown key.
REMOVED_OPTIONS: frozenset[str] = frozenset({"numa", "num_gqa", "tfs_z"})

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT32_MAX = 2**31 - 1
_FLOAT32_MAX = 3.4028234663852886e38

# The edge rule for options that size memory, threads or loops: after the type check a request
# value is clamped into [low, high], never refused (Ollama clamps num_ctx < 4 to 4, caps
# num_predict in the runner, and ignores num_thread/num_gpu values it cannot use).  Values with
# a meaning of their own are mapped first: num_ctx 0 = automatic (kept), num_batch <= 0 = the
# default 512 (Ollama then passes no -b), num_gpu < 0 = -1 (automatic), num_thread < 0 = 0
# (automatic), num_predict < 0 = -1 (until a stop condition).  The upper bounds only stop values
# no model can use (int32 is what llama.cpp takes; 512 is GGML_MAX_N_THREADS; 2**24 tokens is
# above every trained context); the runner clamps num_ctx to the model's trained context and
# num_batch to the context at load time, and the engine bounds num_predict by the context.
# The context of a model loaded without a num_ctx (and without OLLAMA_CONTEXT_LENGTH).
DEFAULT_NUM_CTX = 4096
MAX_NUM_CTX = 1 << 24
RESOURCE_BOUNDS: dict[str, tuple[int, int]] = {
    "num_ctx": (4, MAX_NUM_CTX),
    "num_batch": (1, MAX_NUM_CTX),
    "num_gpu": (-1, _INT32_MAX),
    "main_gpu": (0, _INT32_MAX),
    "num_thread": (0, 512),
    "draft_num_predict": (0, _INT32_MAX),
    "num_keep": (-1, MAX_NUM_CTX),
    "num_predict": (-1, _INT32_MAX),
    "repeat_last_n": (-1, MAX_NUM_CTX),
    "top_k": (0, _INT32_MAX),
    "num_parallel": (0, MAX_NUM_PARALLEL),  # 0: not set (the environment decides)
}


def clamp_resource(name: str, value: int) -> int:
    """Apply the edge rule above to one integer option (others pass through)."""
    bounds = RESOURCE_BOUNDS.get(name)
    if bounds is None:
        return value
    if name == "num_ctx" and value == 0:
        return 0  # automatic
    if name == "num_batch" and value <= 0:
        return int(DEFAULTS["num_batch"])  # type: ignore[call-overload]
    if name == "repeat_last_n" and value < -1:
        return 0  # llama.cpp treats any other negative window as "off"
    low, high = bounds
    return min(max(value, low), high)


# Go's strconv.ParseBool, which is case-sensitive apart from these spellings.
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}

# strconv.ParseInt(s, 10, 64): ASCII digits with an optional sign; no spaces, no underscores.
_GO_INT = re.compile(r"[+-]?[0-9]+")

# strconv.ParseFloat syntax (Go float literals): underscores only between digits (or right
# after a 0x prefix), a hex mantissa needs a 'p' exponent.
_DEC = r"[0-9](?:_?[0-9])*"
_HEX = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_GO_FLOAT = re.compile(
    rf"[+-]?(?:(?:{_DEC}(?:\.(?:{_DEC})?)?|\.{_DEC})(?:[eE][+-]?{_DEC})?"
    rf"|0[xX](?:_?{_HEX}(?:\.(?:{_HEX})?)?|\.{_HEX})[pP][+-]?{_DEC})"
)


def default_options() -> dict[str, object]:
    """A fresh, mutable copy of :data:`DEFAULTS` (``stop`` is a list, so copy deeply)."""
    return copy.deepcopy(DEFAULTS)


def _parse_go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), or None where Go returns an error."""
    if not _GO_INT.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _parse_go_float32(text: str) -> float | None:
    """strconv.ParseFloat(text, 32), or None on error.

    Go also accepts ``inf``/``infinity``/``nan``, but its JSON encoder then refuses to send
    them, so the pattern leaves them out and they fail here instead of at request time.
    """
    if not _GO_FLOAT.fullmatch(text):
        return None
    digits = text.replace("_", "")
    unsigned = digits.lstrip("+-")
    value = float.fromhex(digits) if unsigned[:2].lower() == "0x" else float(digits)
    try:
        struct.pack("<f", value)  # raises when the value rounds past float32's range
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _go_list(values: list[str]) -> str:
    """How Go's ``%s`` prints a []string: ``[a b c]``."""
    return "[" + " ".join(values) + "]"


def format_params(params: Mapping[str, list[str]]) -> dict[str, object]:
    """Type the string values of Modelfile PARAMETERs / ``/set parameter`` (``FormatParams``).

    A scalar option takes its first value (``/set parameter top_k 1 2`` sets 1, as in Ollama);
    ``stop`` keeps every value.  The error message quotes *all* values the way Go prints a
    string slice.  Deprecated names are dropped with a warning rather than failing, so that
    Modelfiles written for older versions still create.
    """
    out: dict[str, object] = {}
    for name, values in params.items():
        if name in DEPRECATED_OPTIONS:
            logger.warning("parameter %s is deprecated", name)
            continue
        kind = OPTION_TYPES.get(name) or MODEL_OPTION_TYPES.get(name)
        if kind is None:
            raise OptionError(f"unknown parameter '{name}'")
        values = list(values)
        if kind is list:
            out[name] = values
            continue
        first = values[0] if values else None
        parsed: object | None
        if kind is bool:
            parsed = _BOOLS.get(first) if first is not None else None
            label = "bool"
        elif kind is int:
            parsed = _parse_go_int(first) if first is not None else None
            label = "int"
        elif kind is float:
            parsed = _parse_go_float32(first) if first is not None else None
            label = "float"
        else:
            parsed, label = first, "string"
        if parsed is None:
            raise OptionError(f"invalid {label} value {_go_list(values)}")
        out[name] = parsed
    return out


def _coerce_json(name: str, kind: type, value: Any) -> object:
    """Check one request option value against its type, as Go's FromMap does after json decoding.

    JSON has one number type, so any number is accepted for an integer option (truncated
    toward zero, saturating at Go's int64 where Go's conversion would wrap) and integers are
    accepted for float options.  Python's ``bool`` is an ``int`` subclass, which must not make
    ``true`` a valid integer.  A float beyond float32's range would become +Inf in Go's
    float32 field; here it is refused like a non-finite value.
    """
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        if is_number and math.isfinite(value):
            return min(max(int(value), _INT64_MIN), _INT64_MAX)
        raise OptionError(f'option "{name}" must be of type integer')
    if kind is float:
        if is_number and math.isfinite(value) and abs(value) <= _FLOAT32_MAX:
            return float(value)
        raise OptionError(f'option "{name}" must be of type float32')
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise OptionError(f'option "{name}" must be of type boolean')
    if kind is str:
        if isinstance(value, str):
            return value
        raise OptionError(f'option "{name}" must be of type string')
    if not isinstance(value, (list, tuple)):
        raise OptionError(f'option "{name}" must be of type array')
    if not all(isinstance(item, str) for item in value):
        raise OptionError(f'option "{name}" must be of an array of strings')
    return list(value)


def validate_request_options(options: Mapping[str, Any] | None) -> dict[str, object]:
    """Validate a request's ``options`` object (Ollama's ``Options.FromMap``).

    Returns only the recognised, non-null keys with normalised Python values, resource
    options clamped by :func:`clamp_resource`; the caller merges them over the model's
    parameters.  Unknown keys are logged and dropped (that includes deprecated and removed
    names, which old clients keep sending).  A ``null`` value leaves the option unset, as in
    Ollama.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise OptionError("options must be a JSON object")
    out: dict[str, object] = {}
    for name, value in options.items():
        kind = OPTION_TYPES.get(name)
        if kind is None:
            if name in MODEL_OPTION_TYPES:
                logger.warning("option %s is set per model (a Modelfile PARAMETER); ignored", name)
            elif name in DEPRECATED_OPTIONS or name in REMOVED_OPTIONS:
                logger.debug("ignoring obsolete option %s", name)
            else:
                logger.warning("invalid option provided: option=%s", name)
            continue
        if value is None:
            continue
        coerced = _coerce_json(name, kind, value)
        out[name] = clamp_resource(name, coerced) if kind is int else coerced  # type: ignore[arg-type]
    return out


# Deprecated names Modelfiles still carry; create keeps them (the sampler reads mirostat*).
_DEPRECATED_TYPES: dict[str, type] = {
    "mirostat": int,
    "mirostat_tau": float,
    "mirostat_eta": float,
    **dict.fromkeys(
        ("penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock"), bool
    ),
}


def validate_parameters(params: Mapping[str, Any]) -> None:
    """Check ``/api/create``'s ``parameters`` before anything is stored.

    Names are checked as strictly as a Modelfile's PARAMETER lines (``unknown parameter 'x'``)
    and values with FromMap's type rules, so a stored model never makes every later request
    fail (a ``null`` value too: the merge at request time would put it over the default).
    The values are stored as sent (digests stay Ollama's); clamping happens at request time.
    """
    if not isinstance(params, Mapping):
        raise OptionError("parameters must be a JSON object")
    for name, value in params.items():
        kind = OPTION_TYPES.get(name) or MODEL_OPTION_TYPES.get(name) or _DEPRECATED_TYPES.get(name)
        if kind is None:
            raise OptionError(f"unknown parameter '{name}'")
        _coerce_json(name, kind, value)


def merge_options(model_params: Mapping[str, Any] | None, requested: Any) -> dict[str, object]:
    """``DefaultOptions`` <- model parameters <- request options, each typed and clamped once.

    Request options go through :func:`validate_request_options` (a wrong type raises
    :class:`OptionError`, a 400).  Stored parameters were checked at create, but a model written
    by an older llamita, or pulled, can still hold a bad value: that one is logged and left out,
    so the model keeps answering (Ollama fails every request on it with a 500).  The deprecated
    mirostat* names the sampler still reads are kept from the model.
    """
    merged = default_options()
    for name, value in (model_params or {}).items():
        kind = OPTION_TYPES.get(name) or MODEL_OPTION_TYPES.get(name) or _DEPRECATED_TYPES.get(name)
        if kind is None:
            continue
        try:
            coerced = _coerce_json(name, kind, value)
        except OptionError as e:
            logger.warning("ignoring the model's parameter %s: %s", name, e)
            continue
        merged[name] = clamp_resource(name, coerced) if kind is int else coerced  # type: ignore[arg-type]
    merged.update(validate_request_options(requested))
    return merged
