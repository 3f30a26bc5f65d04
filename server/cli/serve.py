"""``llamita serve``: the only module that imports the API and uvicorn."""

from __future__ import annotations

import logging
import os

import uvicorn

from .. import config
from ..api import build_app
from ..default_model import ensure_default_model
from ..store import Store


def serve() -> int:
    logging.basicConfig(level=config.debug_level(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("llamita")
    host = config.host()
    store = Store(config.models_dir())
    if os.environ.get("LLAMITA_NO_DEFAULT_MODEL", "") in ("", "0"):
        ensure_default_model(store)
    log.info("Listening on %s (models in %s)", host.netloc, store.root)
    app = build_app(store, listen_host=host.host)
    uvicorn.run(
        app,
        host=host.host,
        port=host.port,
        log_level=logging.getLevelName(config.debug_level()).lower(),
        access_log=config.debug_level() <= logging.DEBUG,
    )
    return 0
