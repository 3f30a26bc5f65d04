"""``GET /``: "Ollama is running" for programs, a status page for people.

Health checks, curl and every Ollama client read ``/`` as plain text, so that answer never
changes; only a request whose ``Accept`` header prefers ``text/html`` (a browser) gets the HTML
page: the loaded models (as ``/api/ps``), each one's running and queued requests and KV cache use,
usage per API key, and the inline-completion acceptance rate.  One self-contained page: inline
CSS, no script, every value escaped, a ``<meta http-equiv="refresh">`` to keep it current.

Who sees what, when API keys are on (``/`` itself stays public for health checks):

- without an admin key, the page says only that llamita is running, with a sign-in link;
- ``/?signin`` (any value) answers 401 with ``WWW-Authenticate: Basic realm="llamita"`` until
  the browser sends an admin key, so the browser asks for it (any user name, the key as the
  password) and sends it with every refresh;
- an admin key in ``Authorization: Bearer``, ``Authorization: Basic`` or ``x-api-key`` shows the
  whole page.  A key never travels in the URL.
"""

from __future__ import annotations

import base64
import binascii
import html
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from llamita.server import __version__
from llamita.server.gocompat.time import rfc3339
from llamita.server.runtime.metrics import AcceptanceRow
from llamita.server.runtime.runners import Runner, Runners

from .auth import KeyRing
from .roles import ADMIN

log = logging.getLogger("llamita")

PLAIN = "Ollama is running"
REFRESH_SECONDS = 5
SIGNIN_PARAM = "signin"
HTML_TYPES = ("text/html", "application/xhtml+xml")
HEADERS = {
    "Cache-Control": "no-store",
    "Vary": "Accept, Authorization",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


# ---- who is asking ------------------------------------------------------------------------------


def prefers_html(accept: str) -> bool:
    """Whether ``accept`` ranks an HTML type first: its q is the highest listed (a tie goes to the
    type listed first).  ``*/*`` alone, or no header, is a program: plain text."""
    best: tuple[float, int, bool] = (0.0, 0, False)  # (q, -position, is html)
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if not media or not 0 < q <= 1:
            continue
        candidate = (q, -position, media.lower() in HTML_TYPES)
        if candidate[:2] > best[:2]:
            best = candidate
    return best[2]


def presented_key(request: Request) -> tuple[str, str]:
    """(authorization, x-api-key) for :meth:`KeyRing.check`, with HTTP Basic (what a browser
    sends) turned into a bearer token: the password, or the user name when the password is empty."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            decoded = ""
        user, _, password = decoded.partition(":")
        authorization = f"Bearer {password or user}"
    return authorization, request.headers.get("x-api-key", "")


def caller_role(keys: KeyRing, authorization: str, api_key: str) -> str | None:
    """The role of the presented key (a bare key is an admin), None when it is not a configured key."""
    key = keys.identify(authorization, api_key)
    return None if key is None else key.role


# ---- what the page shows ------------------------------------------------------------------------


@dataclass
class ModelRow:
    name: str
    size: int
    size_vram: int
    context_length: int
    expires: str  # "in 4m 10s", "in use", "never"
    expires_at: str  # RFC 3339, or "" for never
    healthy: bool
    failure: str | None
    running: int
    queued: int
    kv_tokens: int
    kv_capacity: int


@dataclass
class StatusView:
    models: list[ModelRow] = field(default_factory=list)
    acceptance: list[AcceptanceRow] = field(default_factory=list)
    usage: list[Mapping[str, Any]] | None = None  # None: usage is not recorded
    usage_error: str | None = None
    keys_on: bool = False
    generated_at: float = field(default_factory=time.time)


def _expires(runner: Runner, now: float) -> tuple[str, str]:
    """(what a person reads, the RFC 3339 time): a model serving requests starts its keep-alive
    only when the last one ends, so it shows "in use" rather than a countdown."""
    expires_at, duration = runner.expires_at, runner.duration
    if not math.isfinite(duration):
        return "never", ""
    if runner.refcount > 0:
        return "in use", rfc3339(expires_at)
    left = max(0, int(expires_at - now))
    minutes, seconds = divmod(left, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours}h {minutes}m" if hours else f"{minutes}m {seconds}s" if minutes else f"{seconds}s"
    return f"in {text}", rfc3339(expires_at)


def model_rows(runners: Runners, now: float) -> list[ModelRow]:
    """The loaded models, in ``/api/ps`` order, with their engines' present load."""
    rows = []
    for runner in runners.ps():
        stats = runner.engine.stats()
        size, size_vram = runner.sizes()
        expires, expires_at = _expires(runner, now)
        rows.append(
            ModelRow(
                name=runner.model.name.shortest,
                size=size,
                size_vram=size_vram,
                context_length=runner.num_ctx,
                expires=expires,
                expires_at=expires_at,
                healthy=runner.healthy,
                failure=runner.failure,
                running=stats.running,
                queued=stats.queued,
                kv_tokens=stats.kv_tokens,
                kv_capacity=stats.n_ctx,
            )
        )
    return rows


async def usage_rows(state: Any) -> tuple[list[Mapping[str, Any]] | None, str | None]:
    """``app.state.usage.totals()``: rows of column -> value per key and model since the server
    started, read off the event loop; (None, None) when this server records no usage.  A failing
    recorder must not take the page down with it."""
    usage = getattr(state, "usage", None)
    totals = getattr(usage, "totals", None)
    if totals is None:
        return None, None
    try:
        rows = list(await run_in_threadpool(totals))
    except Exception as e:  # shown on the page and logged; the rest of the page still renders
        log.exception("status page: reading usage failed")
        return None, f"{type(e).__name__}: {e}"
    if not all(isinstance(row, Mapping) for row in rows):
        return None, "usage totals are not a list of rows"
    return rows, None


async def collect(request: Request) -> StatusView:
    state = request.app.state
    now = time.time()
    usage, usage_error = await usage_rows(state)
    return StatusView(
        models=model_rows(state.runners, now),
        acceptance=state.metrics.acceptance.rows(),
        usage=usage,
        usage_error=usage_error,
        keys_on=state.keys.enabled,
        generated_at=now,
    )


# ---- HTML ---------------------------------------------------------------------------------------

STYLE = """
:root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --line: #d0d5dd; --bg: #fff;
  --card: #f6f7f9; --ok: #1a7f37; --bad: #c62828; --bar: #3b82f6; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8ec; --muted: #98a2b3; --line: #344054;
  --bg: #101418; --card: #181d23; --ok: #4ade80; --bad: #f87171; --bar: #60a5fa; } }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; padding: 24px; max-width: 1100px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.muted { color: var(--muted); } .ok { color: var(--ok); } .bad { color: var(--bad); }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px;
  min-width: 140px; } .card b { display: block; font-size: 20px; }
table { border-collapse: collapse; width: 100%; background: var(--card); border-radius: 8px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); } td.num, th.num { text-align: right; }
td.name { white-space: normal; word-break: break-all; }
.bar { display: inline-block; width: 90px; height: 8px; background: var(--line); border-radius: 4px;
  vertical-align: middle; margin-right: 6px; overflow: hidden; }
.bar i { display: block; height: 100%; background: var(--bar); }
a { color: var(--bar); }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def human_bytes(n: int) -> str:
    """Ollama's size style (1000-based, as ``ollama ps`` prints)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # unreachable


def percent(part: int | float, whole: int | float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _cell(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{esc('-' if value is None else value)}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:,.2f}</td>'
    return f'<td class="name">{esc(value)}</td>'


def _table(head: Iterable[str], rows: Iterable[str], numeric: Iterable[int] = ()) -> str:
    """A table; the ``numeric`` columns' headings are right-aligned like their cells."""
    right = set(numeric)
    cells = "".join(
        f'<th class="num">{esc(h)}</th>' if i in right else f"<th>{esc(h)}</th>" for i, h in enumerate(head)
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _kv(row: ModelRow) -> str:
    share = row.kv_tokens / row.kv_capacity if row.kv_capacity else 0.0
    width = f"{min(100.0, 100 * share):.1f}"
    return (
        f'<td class="num"><span class="bar"><i style="width:{width}%"></i></span>'
        f"{row.kv_tokens:,} / {row.kv_capacity:,} ({percent(row.kv_tokens, row.kv_capacity)})</td>"
    )


def _model_row(row: ModelRow) -> str:
    health = (
        '<td class="ok">yes</td>'
        if row.healthy
        else f'<td class="bad" title="{esc(row.failure or "")}">no: {esc(row.failure or "stopped")}</td>'
    )
    expires = f'<td title="{esc(row.expires_at)}">{esc(row.expires)}</td>'
    return (
        f'<tr><td class="name">{esc(row.name)}</td><td class="num">{human_bytes(row.size)}</td>'
        f'<td class="num">{human_bytes(row.size_vram)}</td><td class="num">{row.context_length:,}</td>'
        f'{expires}{health}<td class="num">{row.running}</td><td class="num">{row.queued}</td>{_kv(row)}</tr>'
    )


def models_section(models: list[ModelRow]) -> str:
    if not models:
        return "<h2>Loaded models</h2><p class='muted'>No model is loaded.</p>"
    head = ["Model", "Size", "VRAM", "Context", "Expires", "Healthy", "Running", "Queued", "KV cache"]
    return "<h2>Loaded models</h2>" + _table(head, map(_model_row, models), numeric=(1, 2, 3, 6, 7, 8))


def _rate(row: AcceptanceRow) -> str:
    return percent(row.accepted, row.shown)


def acceptance_section(rows: list[AcceptanceRow]) -> str:
    title = "<h2>Inline completions</h2>"
    if not rows:
        return (
            title + "<p class='muted'>No completion events reported yet (the language server sends them).</p>"
        )
    body = (
        f'<tr><td class="name">{esc(r.model)}</td><td class="name">{esc(r.language)}</td>'
        f'<td class="num">{r.shown:,}</td><td class="num">{r.accepted:,}</td>'
        f'<td class="num">{r.partially_accepted:,}</td><td class="num">{r.accepted_chars:,}</td>'
        f'<td class="num">{_rate(r)}</td></tr>'
        for r in rows
    )
    head = ["Model", "Language", "Shown", "Accepted", "Partly accepted", "Characters accepted", "Acceptance"]
    return title + _table(head, body, numeric=range(2, 7))


def usage_section(view: StatusView) -> str:
    title = "<h2>Usage per key <span class='muted'>(since the server started)</span></h2>"
    if view.usage_error is not None:
        return title + f"<p class='bad'>usage unavailable: {esc(view.usage_error)}</p>"
    if view.usage is None:
        return title + "<p class='muted'>usage not recorded</p>"
    if not view.usage:
        return title + "<p class='muted'>No usage yet.</p>"
    columns = list(view.usage[0].keys())
    first = view.usage[0]
    numeric = [
        i
        for i, c in enumerate(columns)
        if isinstance(first[c], int | float) and not isinstance(first[c], bool)
    ]
    body = ("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in view.usage)
    return title + _table([c.replace("_", " ") for c in columns], body, numeric)


def _overall_rate(rows: list[AcceptanceRow]) -> str:
    shown = sum(r.shown for r in rows)
    return percent(sum(r.accepted for r in rows), shown)


def _document(title: str, body: str, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{esc(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def render_page(view: StatusView) -> str:
    """The whole status page."""
    running = sum(m.running for m in view.models)
    queued = sum(m.queued for m in view.models)
    cards = "".join(
        f'<div class="card"><span class="muted">{esc(label)}</span><b>{esc(value)}</b></div>'
        for label, value in (
            ("Models loaded", len(view.models)),
            ("Running", running),
            ("Queued", queued),
            ("Acceptance", _overall_rate(view.acceptance)),
        )
    )
    keys = "API keys on" if view.keys_on else "no API keys (open server)"
    header = (
        f"<h1>llamita is running</h1><div class='muted'>llamita {esc(__version__)} · {keys} · "
        f"updated {esc(rfc3339(view.generated_at))}, every {REFRESH_SECONDS}s</div>"
        f'<div class="cards">{cards}</div>'
    )
    body = header + models_section(view.models) + acceptance_section(view.acceptance) + usage_section(view)
    return _document("llamita status", body, refresh=True)


def render_signin(message: str) -> str:
    """What a browser without an admin key sees when keys are on: nothing about models or usage."""
    body = (
        "<h1>llamita is running</h1>"
        f"<p>{esc(message)}</p><p><a href='/?{SIGNIN_PARAM}=1'>Sign in</a> with an admin API key "
        "(any user name; the key as the password) to see models, queues and usage.</p>"
    )
    return _document("llamita", body, refresh=False)


# ---- the route ----------------------------------------------------------------------------------


async def root(request: Request) -> Response:
    """``GET``/``HEAD /``: plain text for programs, the status page for browsers (rules above)."""
    if request.method != "GET" or not prefers_html(request.headers.get("accept", "")):
        return PlainTextResponse(PLAIN, headers={"Vary": "Accept"})
    keys: KeyRing = request.app.state.keys
    if keys.enabled:
        role = caller_role(keys, *presented_key(request))
        if role != ADMIN:
            wrong = "This key is not an admin key." if role else "Sign in to see the status page."
            if SIGNIN_PARAM in request.query_params:
                challenge = {**HEADERS, "WWW-Authenticate": 'Basic realm="llamita", charset="UTF-8"'}
                return HTMLResponse(render_signin(wrong), status_code=401, headers=challenge)
            return HTMLResponse(render_signin(wrong), headers=HEADERS)
    return HTMLResponse(render_page(await collect(request)), headers=HEADERS)
