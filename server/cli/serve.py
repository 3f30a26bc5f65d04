"""``llamita serve``: the only module that imports the API and uvicorn."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import uvicorn

from llamita.server import config
from llamita.server.api import build_app
from llamita.server.api.auth import KeyRing, KeysFileError, exposure_warning
from llamita.server.model.default_model import ensure_default_model
from llamita.server.store.blobs import Store


class TLSConfigError(ValueError):
    """Raised when only one of LLAMITA_TLS_CERT / LLAMITA_TLS_KEY is set, or a file is missing."""


def tls_options() -> dict[str, Any]:
    """uvicorn's ssl keyword arguments, or {} for plain http."""
    cert, key = config.tls_cert(), config.tls_key()
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise TLSConfigError("set both LLAMITA_TLS_CERT and LLAMITA_TLS_KEY to serve https")
    for path in (cert, key):
        if not path.is_file():
            raise TLSConfigError(f"TLS file not found: {path}")
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def _reload_on_sighup(keys: KeyRing) -> None:
    """Key rotation without a restart; only when a keys file exists, since SIGHUP's default
    action (terminate) is what a user who never configured a file expects."""
    if keys.path is not None and hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda signum, frame: keys.request_reload())


def serve() -> int:
    logging.basicConfig(level=config.debug_level(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("llamita")
    host = config.host()
    try:
        tls = tls_options()
        store = Store(config.models_dir())
        app = build_app(store, listen_host=host.host)
    except (TLSConfigError, KeysFileError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    if not config.no_default_model():
        ensure_default_model(store)
    keys: KeyRing = app.state.keys
    warning = exposure_warning(host.host, keys)
    if warning:
        log.warning(warning)
    elif keys.enabled:
        log.info("API keys required (%d configured)", keys.count)
    _reload_on_sighup(keys)
    scheme = "https" if tls else "http"
    log.info("Listening on %s://%s (models in %s)", scheme, host.netloc, store.root)
    uvicorn.run(
        app,
        host=host.host,
        port=host.port,
        log_level=logging.getLevelName(config.debug_level()).lower(),
        access_log=config.debug_level() <= logging.DEBUG,
        **tls,
    )
    return 0
