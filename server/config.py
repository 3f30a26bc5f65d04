"""Every environment variable llamita honours: one table, and one accessor per variable.

:data:`VARIABLES` lists them with their meaning; ``llamita serve --help`` prints it
(:func:`describe`) and the tests clear every variable in it.  Accessors read only through
:func:`var`, which refuses a name the table lacks, so the table cannot fall behind.  Values
are read at call time (not import time) so tests and the CLI can change the environment;
like Ollama, they are trimmed of spaces and of ``'`` / ``"`` quotes.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from llamita.server.gocompat.net import HostURL, parse_host
from llamita.server.gocompat.time import parse_duration

FOREVER = float("inf")

_BOOL_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_BOOL_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_T = TypeVar("_T")


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    client: bool = False  # read by the CLI only: left out of ``serve --help``


VARIABLES: tuple[Variable, ...] = (
    Variable("OLLAMA_HOST", "IP address and port to listen on (default 127.0.0.1:11434)"),
    Variable("OLLAMA_MODELS", "model store directory (default ~/.ollama/models)"),
    Variable("OLLAMA_ORIGINS", "extra allowed browser origins, comma separated"),
    Variable("OLLAMA_KEEP_ALIVE", "how long models stay loaded (default 5m)"),
    Variable(
        "OLLAMA_NUM_PARALLEL",
        "requests decoded at once per model, unless its num_parallel PARAMETER says (default 4)",
    ),
    Variable(
        "LLAMITA_NUM_PARALLEL",
        "override num_parallel: N for every model, or model=N,... per model (wins over the PARAMETER)",
    ),
    Variable(
        "OLLAMA_LOAD_TIMEOUT", "how long a model load may take before it fails (default 5m; 0 = no limit)"
    ),
    Variable("OLLAMA_MAX_LOADED_MODELS", "models loaded at once (default 3)"),
    Variable("OLLAMA_MAX_QUEUE", "pending requests before 503 (default 512)"),
    Variable("OLLAMA_CONTEXT_LENGTH", "default context length"),
    Variable(
        "OLLAMA_FLASH_ATTENTION",
        "1 forces flash attention on, 0 off; a flash_attn PARAMETER wins (default: llama.cpp decides)",
    ),
    Variable(
        "OLLAMA_KV_CACHE_TYPE", "KV cache type: f16 (default), q8_0 or q4_0 (quantized needs flash attention)"
    ),
    Variable(
        "LLAMITA_KV_UNIFIED",
        "auto (default) or 1: one KV pool shared by all sequences; 0: fixed cells per sequence",
    ),
    Variable("OLLAMA_NOPRUNE", "do not prune unused blobs at startup"),
    Variable("OLLAMA_DEBUG", "log level: 1 debug, -1 warn, -2 error"),
    Variable("LLAMITA_STEP_MS", "engine step budget for prompt evaluation in ms (default 300)"),
    Variable("LLAMITA_NO_DEFAULT_MODEL", "do not import the bundled default model into an empty store"),
    Variable("LLAMITA_API_KEYS", "comma-separated API keys; when set, requests need Authorization: Bearer"),
    Variable("LLAMITA_API_KEYS_FILE", "file of API keys: NAME KEY ROLE lines (re-read on SIGHUP)"),
    Variable("LLAMITA_TLS_CERT", "PEM certificate: serve https (with LLAMITA_TLS_KEY)"),
    Variable("LLAMITA_TLS_KEY", "PEM private key for LLAMITA_TLS_CERT"),
    Variable("LLAMITA_MAX_BODY", "largest JSON request body (default 32MiB)"),
    Variable("LLAMITA_MAX_BLOB_BODY", "largest blob upload (default 1TiB)"),
    Variable("LLAMITA_BODY_TIMEOUT", "seconds to send a request body / a blob chunk (default 60)"),
    Variable("LLAMITA_MAX_CONCURRENT_PER_KEY", "requests in flight per API key, 0 = no cap (default 0)"),
    Variable("LLAMITA_METRICS_PUBLIC", "serve /metrics without an API key"),
    Variable("LLAMITA_REPLICA_ID", "value of the X-Llamita-Replica response header"),
    Variable("LLAMITA_REGISTRY_AUTH", "pull/push credentials: user:password or host=user:password,..."),
    Variable("LLAMITA_API_KEY", "the API key the CLI sends (Authorization: Bearer)", client=True),
    Variable("LLAMITA_TLS_CA", "PEM CA bundle the CLI verifies an https server with", client=True),
    Variable("OLLAMA_NOHISTORY", "do not keep the REPL history in ~/.ollama/history", client=True),
)
_NAMES = frozenset(v.name for v in VARIABLES)


def describe() -> list[tuple[str, str]]:
    """(variable, meaning) pairs for ``llamita serve --help``: the server's rows of the table."""
    return [(v.name, v.meaning) for v in VARIABLES if not v.client]


def var(key: str) -> str:
    """The raw value of ``key``, trimmed of whitespace and quotes, as Ollama's ``Var``."""
    if key not in _NAMES:
        raise KeyError(f"{key} is not in config.VARIABLES")
    return os.environ.get(key, "").strip().strip("\"'")


def parse_bool(value: str) -> bool:
    """Go's strconv.ParseBool, raising ValueError on anything else."""
    if value in _BOOL_TRUE:
        return True
    if value in _BOOL_FALSE:
        return False
    raise ValueError(f"invalid bool {value!r}")


def _env(key: str, default: _T, *parsers: Callable[[str], _T], warn: bool = True) -> _T:
    """The first parser that accepts ``key``'s value; empty → default, unparsable → default
    (logged unless ``warn`` is false)."""
    value = var(key)
    if not value:
        return default
    for parse in parsers:
        try:
            return parse(value)
        except ValueError:
            continue
    if warn:
        logging.getLogger(__name__).warning("invalid %s=%r, using default %s", key, value, default)
    return default


def _bool(key: str, default: bool = False) -> bool:
    """Empty → default; an unparsable value counts as true (Ollama's rule)."""
    return _env(key, default, parse_bool, lambda _: True)


def _uint(key: str, default: int) -> int:
    n = _env(key, default, int)
    return n if n >= 0 else default


def _size(key: str, default: int) -> int:
    return _env(key, default, parse_size)


def _seconds(key: str, default: float) -> float:
    """A Go duration (``"90s"``, ``"500ms"``) or a number of seconds; invalid → default."""
    return _env(key, default, parse_duration, float)


def host() -> HostURL:
    return parse_host(var("OLLAMA_HOST"))


def models_dir() -> Path:
    """The model store root; Ollama's own default so users' pulled models are served."""
    value = var("OLLAMA_MODELS")
    return Path(value).expanduser() if value else Path.home() / ".ollama" / "models"


def allowed_origins() -> list[str]:
    """User origins first, then Ollama's built-in list."""
    value = var("OLLAMA_ORIGINS")
    origins = [o.strip() for o in value.split(",")] if value else []
    for origin in ("localhost", "127.0.0.1", "0.0.0.0"):
        origins += [f"http://{origin}", f"https://{origin}", f"http://{origin}:*", f"https://{origin}:*"]
    origins += ["app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"]
    return origins


def keep_alive() -> float:
    """Seconds a model stays loaded after its last request; ``inf`` for forever."""
    seconds = _env("OLLAMA_KEEP_ALIVE", 300.0, parse_duration, lambda v: float(int(v)), warn=False)
    return FOREVER if seconds < 0 else seconds


def load_timeout() -> float:
    """Seconds a model load may take (Ollama's LoadTimeout: a Go duration, else whole seconds;
    default 5m; zero or negative = no limit, ``inf``)."""
    seconds = _env("OLLAMA_LOAD_TIMEOUT", 300.0, parse_duration, lambda v: float(int(v)), warn=False)
    return seconds if seconds > 0 else FOREVER


def num_parallel() -> int:
    """Sequences decoded together per model; llamita batches, so it defaults to 4."""
    return _uint("OLLAMA_NUM_PARALLEL", 4) or 4


def num_parallel_override(model: str = "") -> int | None:
    """``LLAMITA_NUM_PARALLEL`` for ``model`` (a short name, ``smollm2:latest``): ``N`` applies
    to every model, ``name=N`` to one (case-insensitive; ``name`` alone means ``name:latest``),
    and a named entry wins over a bare ``N``.  None when nothing applies; bad entries are logged."""
    found: int | None = None
    for entry in var("LLAMITA_NUM_PARALLEL").split(","):
        name, sep, count = entry.strip().rpartition("=")
        name = name.strip()
        try:
            n = int(count.strip())
        except ValueError:
            n = 0
        if n <= 0:
            if entry.strip():
                logging.getLogger(__name__).warning("invalid LLAMITA_NUM_PARALLEL entry %r", entry.strip())
            continue
        if not sep:
            found = n if found is None else found
        elif model and model.lower() in (name.lower(), f"{name.lower()}:latest"):
            return n
    return found


def max_loaded_models() -> int:
    return _uint("OLLAMA_MAX_LOADED_MODELS", 0)


def max_queue() -> int:
    return _uint("OLLAMA_MAX_QUEUE", 512)


def context_length() -> int:
    return _uint("OLLAMA_CONTEXT_LENGTH", 0)


def step_target() -> float:
    """Seconds one engine step may spend on prompt tokens (``LLAMITA_STEP_MS``, default 300)."""
    return _uint("LLAMITA_STEP_MS", 300) / 1000 or 0.3


def no_prune() -> bool:
    return _bool("OLLAMA_NOPRUNE")


def flash_attention() -> bool | None:
    """``OLLAMA_FLASH_ATTENTION``: True or False when set, None (llama.cpp's choice) when not."""
    return _bool("OLLAMA_FLASH_ATTENTION") if var("OLLAMA_FLASH_ATTENTION") else None


KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")


def kv_cache_type() -> str:
    """``OLLAMA_KV_CACHE_TYPE`` lower-cased; f16 when unset or not one of :data:`KV_CACHE_TYPES`
    (logged, as Ollama does for a type it cannot use)."""
    value = var("OLLAMA_KV_CACHE_TYPE").lower()
    if value and value not in KV_CACHE_TYPES:
        logging.getLogger(__name__).warning("unsupported OLLAMA_KV_CACHE_TYPE=%r, using f16", value)
        return "f16"
    return value or "f16"


def kv_unified() -> bool | None:
    """``LLAMITA_KV_UNIFIED``: ``1`` one KV pool for all sequences (idle editors' KV fills free
    cells, prefixes are shared without copies); ``0`` each sequence its own ``num_ctx`` cells;
    ``auto`` (None, the default) lets the runtime choose per build (see ``runtime/knobs``)."""
    value = var("LLAMITA_KV_UNIFIED")
    if value.lower() in ("", "auto"):
        return None
    return _env("LLAMITA_KV_UNIFIED", None, parse_bool)


def no_default_model() -> bool:
    """Skip importing the bundled default model into an empty store (any value but 0)."""
    return var("LLAMITA_NO_DEFAULT_MODEL") not in ("", "0")


def no_history() -> bool:
    """The REPL keeps no ``~/.ollama/history`` (read by the CLI)."""
    return _bool("OLLAMA_NOHISTORY")


def debug_level() -> int:
    """Python logging level from OLLAMA_DEBUG (1/true = DEBUG, 2 = TRACE→DEBUG, -1 = WARN)."""
    value = var("OLLAMA_DEBUG")
    if not value:
        return logging.INFO
    try:
        n = int(value)
    except ValueError:
        return logging.DEBUG if _bool("OLLAMA_DEBUG") else logging.INFO
    return {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(n, logging.DEBUG)


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
}


def parse_size(text: str) -> int:
    """Bytes from ``"32MiB"``, ``"1.5GB"``, ``"4096"`` (case-insensitive units); ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def _path(key: str) -> Path | None:
    value = var(key)
    return Path(value).expanduser() if value else None


# ---- remote serving (LLAMITA_* additions; all off by default, as Ollama has none of them) ----
def api_keys() -> list[str]:
    """Keys from ``LLAMITA_API_KEYS`` (comma separated); blanks dropped."""
    return [k.strip() for k in var("LLAMITA_API_KEYS").split(",") if k.strip()]


def api_keys_file() -> Path | None:
    """A file of ``NAME KEY ROLE`` lines (grammar in api/auth.py); re-read on SIGHUP and when it changes."""
    return _path("LLAMITA_API_KEYS_FILE")


def api_key() -> str:
    """The key the CLI client sends (``Authorization: Bearer``), if any."""
    return var("LLAMITA_API_KEY")


def tls_cert() -> Path | None:
    return _path("LLAMITA_TLS_CERT")


def tls_key() -> Path | None:
    return _path("LLAMITA_TLS_KEY")


def tls_ca() -> Path | None:
    """A PEM CA bundle the CLI client verifies the server with (a self-signed or private CA)."""
    return _path("LLAMITA_TLS_CA")


def max_body() -> int:
    """Largest request body on JSON routes (default 32 MiB)."""
    return _size("LLAMITA_MAX_BODY", 32 << 20)


def max_blob_body() -> int:
    """Largest ``/api/blobs`` upload (default 1 TiB: bigger than any GGUF, smaller than a runaway)."""
    return _size("LLAMITA_MAX_BLOB_BODY", 1 << 40)


def body_timeout() -> float:
    """Seconds a client may take to send a JSON body, or to send the next chunk of a blob upload."""
    return _seconds("LLAMITA_BODY_TIMEOUT", 60.0)


def max_concurrent_per_key() -> int:
    """Requests one API key (or, without keys, one client address) may have in flight; 0 = no cap."""
    return _uint("LLAMITA_MAX_CONCURRENT_PER_KEY", 0)


def metrics_public() -> bool:
    """Serve ``/metrics`` without an API key (for a scraper on a trusted network)."""
    return _bool("LLAMITA_METRICS_PUBLIC")


def replica_id() -> str:
    """Sent back as ``X-Llamita-Replica`` on every response, to see which replica answered."""
    return var("LLAMITA_REPLICA_ID")


def registry_auth() -> str:
    """Registry credentials for pull/push: ``user:password`` or ``host=user:password,...``."""
    return var("LLAMITA_REGISTRY_AUTH")
