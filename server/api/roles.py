"""Which role a route needs: the one table of route -> role (``user`` or ``admin``).

A team box hands out keys per person.  Most people only need to run models (``user``); a few
manage the box: pull, push, create, copy and delete models, upload blobs, read ``/metrics``
and ``/api/usage`` (``admin``).  A path not in this table needs ``admin``, so a route added
later is closed to users until someone classifies it here (a test checks every route of
``build_app`` is listed).  Paths are Starlette route templates; the role depends on the path
alone, so a wrong method on a user route still gets the router's 405.
"""

from __future__ import annotations

import re

from starlette.routing import compile_path

USER = "user"
ADMIN = "admin"
ROLES = (USER, ADMIN)  # in increasing rights

ROUTE_ROLES: dict[str, str] = {
    # health, listing and showing
    "/": USER,
    "/api/version": USER,
    "/api/tags": USER,
    "/api/ps": USER,
    "/api/show": USER,
    "/v1/models": USER,
    "/v1/models/{model:path}": USER,
    # inference: native, OpenAI, Anthropic
    "/api/generate": USER,
    "/api/chat": USER,
    "/api/embed": USER,
    "/api/embeddings": USER,
    "/v1/chat/completions": USER,
    "/v1/completions": USER,
    "/v1/embeddings": USER,
    "/v1/responses": USER,
    "/v1/responses/{response_id}": USER,
    "/v1/messages": USER,
    "/v1/messages/count_tokens": USER,
    # the language server's inline-completion counters (no code text)
    "/api/llamita/completion-events": USER,
    # managing the box
    "/api/pull": ADMIN,
    "/api/push": ADMIN,
    "/api/create": ADMIN,
    "/api/copy": ADMIN,
    "/api/delete": ADMIN,
    "/api/blobs/{digest}": ADMIN,
    "/metrics": ADMIN,
    "/api/usage": ADMIN,
}

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (compile_path(template)[0], role) for template, role in ROUTE_ROLES.items() if "{" in template
]


def required_role(path: str) -> str:
    """The role ``path`` needs; ``admin`` for anything not in the table."""
    role = ROUTE_ROLES.get(path)
    if role is not None:
        return role
    for pattern, role in _PATTERNS:
        if pattern.match(path):
            return role
    return ADMIN


def allows(role: str, path: str) -> bool:
    """True when a key with ``role`` may use ``path``."""
    return ROLES.index(role) >= ROLES.index(required_role(path))
