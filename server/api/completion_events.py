"""``POST /api/llamita/completion-events``: the language server's inline-completion counters.

The editor knows what happened to a completion (shown, accepted whole, accepted in part, how
many characters were kept); the server does not.  The language server batches those counts and
posts them here, per model and language, so the team box's ``/metrics`` and status page show an
acceptance rate.  The body carries numbers and two labels only, never code text::

    {"model": "qwen2.5-coder:1.5b", "language": "python",
     "shown": 12, "accepted": 3, "partially_accepted": 1, "accepted_chars": 140}

The counts are optional (0 when absent) and must be non-negative integers; ``model`` and
``language`` are required, non-empty, printable and bounded.  Anything else is a 400 in Ollama's
error shape.  Other fields are ignored and never stored (as Go's decoder ignores them), so a newer
language server can talk to an older server.  Any caller that may run inference (role ``user``)
may post.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llamita.server.runtime.metrics import ACCEPTANCE_FIELDS

from .errors import APIError
from .request import read_json
from .telemetry import metrics_of

PATH = "/api/llamita/completion-events"
MAX_MODEL = 200  # characters: a model name as the client spells it
MAX_LANGUAGE = 64  # an LSP languageId ("python", "typescriptreact", ...)
MAX_COUNT = 1_000_000  # per report: far above what one batch of keystrokes produces


def _label(body: dict[str, Any], field: str, limit: int) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise APIError(f"{field} is required and must be a non-empty string", 400)
    if len(value) > limit:
        raise APIError(f"{field} must be at most {limit} characters", 400)
    if not value.isprintable():
        raise APIError(f"{field} must not contain control characters", 400)
    return value.strip()


def _count(body: dict[str, Any], field: str) -> int:
    value = body.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise APIError(f"{field} must be an integer from 0 to {MAX_COUNT}", 400)
    return value


def parse_event(body: dict[str, Any]) -> tuple[str, str, dict[str, int]]:
    """(model, language, counts) from a report, or an :class:`APIError` (400)."""
    model = _label(body, "model", MAX_MODEL)
    language = _label(body, "language", MAX_LANGUAGE).lower()
    return model, language, {field: _count(body, field) for field in ACCEPTANCE_FIELDS}


async def completion_events(request: Request) -> Response:
    model, language, counts = parse_event(await read_json(request))
    metrics_of(request).acceptance.add(model, language, counts)
    return Response(status_code=204)
