"""``GET /api/usage``: requests, tokens and engine time per API key name and model.

The answer has the totals since this process started and the stored day buckets (UTC), both
from :class:`~llamita.server.runtime.usage.Usage` on ``app.state``; ``?key=``, ``?model=``
(exact names, as recorded: the model's short name) and ``?days=N`` (today and the N-1 days
before it) narrow it.  Admin-only once keys have roles (the keys layer's role table lists it).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from llamita.server.runtime.errors import InvalidRequest
from llamita.server.runtime.usage import Usage, rfc3339

from .errors import json_reply

DAYS_INVALID = "days must be a positive integer"


def _days(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidRequest(DAYS_INVALID)
    return int(raw)


async def usage(request: Request) -> Response:
    recorder: Usage = request.app.state.usage
    query = request.query_params
    key, model, days = query.get("key") or None, query.get("model") or None, _days(query.get("days"))
    rows = await asyncio.to_thread(recorder.days, key, model, days)  # a flush and a query: off the loop
    return json_reply(
        {"since": rfc3339(recorder.started), "totals": recorder.totals(key, model), "days": rows}
    )
