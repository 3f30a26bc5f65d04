"""``build_app``: the complete route table in one list, plus start-up housekeeping."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from llamita.server import config
from llamita.server.runtime.generate import Runtime
from llamita.server.runtime.metrics import Metrics
from llamita.server.runtime.runners import Runners
from llamita.server.runtime.usage import FILENAME as USAGE_FILE
from llamita.server.runtime.usage import Usage
from llamita.server.store.blobs import Store

from . import completion_events, errors, inference, native, status_page, telemetry, usage
from . import transfer as registry
from .anthropic import routes as anthropic
from .auth import AuthGuard, KeyRing
from .limits import LimitGuard, Limits
from .middleware import OriginGuard
from .openai import routes as openai

log = logging.getLogger("llamita")


READ = ["GET", "HEAD"]


def routes() -> list[Route]:
    """Every route: the native API, ``/metrics``, the OpenAI and Anthropic layers, the registry transfers."""
    posts = {
        "/api/show": native.show_model,
        "/api/create": native.create,
        "/api/copy": native.copy,
        "/api/blobs/{digest}": native.create_blob,
        "/api/generate": inference.generate,
        "/api/chat": inference.chat,
        "/api/embed": inference.embed,
        "/api/embeddings": inference.embeddings,
        completion_events.PATH: completion_events.completion_events,
    }
    return [
        Route("/", status_page.root, methods=READ),
        Route("/api/version", native.version, methods=READ),
        Route("/api/tags", native.tags, methods=READ),
        Route("/api/blobs/{digest}", native.head_blob, methods=["HEAD"]),
        Route("/api/delete", native.delete, methods=["DELETE"]),
        Route("/api/ps", inference.ps, methods=["GET"]),
        Route("/metrics", telemetry.metrics, methods=["GET"]),
        Route("/api/usage", usage.usage, methods=["GET"]),
        *(Route(path, handler, methods=["POST"]) for path, handler in posts.items()),
        *openai.ROUTES,
        *anthropic.ROUTES,
        *registry.ROUTES,
    ]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(
    store: Store | None = None, listen_host: str | None = None, runners: Runners | None = None
) -> Starlette:
    """The ASGI app; ``store`` defaults to ``OLLAMA_MODELS``.

    Keys, limits and the metrics switch are read from the environment here, once, so each
    app (tests build many) carries its own configuration; ``app.state.keys.reload()``
    re-reads the keys file.
    """
    store = store or Store(config.models_dir())
    runners = runners or Runners()
    listen_host = listen_host or config.host().host
    keys = KeyRing.from_env()
    recorder = Usage(store.root / USAGE_FILE)
    metrics = Metrics(runners, recorder)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store.ensure()
        removed = store.clean_temporary()
        if removed:
            log.info("removed %d temporary files left by an interrupted write", removed)
        if not config.no_prune():
            store.prune()
        await recorder.start()
        runners.load_pinned(store)  # LLAMITA_PIN, in the background
        try:
            yield
        finally:
            await runners.close()
            await recorder.close()  # after the runners: the last requests' usage is written too

    handlers = {exc: errors.handle for exc in errors.HANDLED}
    app = Starlette(
        routes=routes(),
        middleware=[  # outermost first: count everything, answer preflights before auth
            Middleware(telemetry.Telemetry, metrics=metrics, replica=config.replica_id()),
            Middleware(OriginGuard, origins=config.allowed_origins(), check_host=_is_loopback(listen_host)),
            Middleware(AuthGuard, keys=keys, metrics_public=config.metrics_public()),
            Middleware(LimitGuard, limits=Limits.from_env()),
        ],
        exception_handlers={**handlers, 404: errors.not_found, 405: errors.method_not_allowed},
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.runners = runners
    app.state.keys = keys
    app.state.metrics = metrics
    app.state.usage = recorder
    app.state.runtime = Runtime(store, runners, metrics, recorder)
    return app
