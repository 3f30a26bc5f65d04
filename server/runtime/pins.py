"""Pinned models (``LLAMITA_PIN``, ``keep_alive`` forever): the refusal and the start-up load.

A team box keeps its completion model resident while chat models come and go: a pinned runner
is never evicted by another load (see :mod:`runners`), and a load that only pinned models
could make room for is refused with a 503 that names them, rather than unloading one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from llamita.server.engine import QueueFull
from llamita.server.model.model import ModelNotFound, load_model
from llamita.server.options import merge_options
from llamita.server.store.blobs import Store

if TYPE_CHECKING:
    from .runners import Runner, Runners

log = logging.getLogger("llamita.runners")


class PinnedMemory(QueueFull):
    """A load refused because only pinned models could make room (a 503, as a busy server)."""

    def __init__(self, name: str, pinned: Iterable[Runner]) -> None:
        held = ", ".join(sorted(r.model.short_name for r in pinned))
        super().__init__(f'cannot load "{name}": memory is held by pinned models {held}')


async def preload(runners: Runners, store: Store) -> None:
    """Load each ``LLAMITA_PIN`` model with its Modelfile's options (what a request without
    options asks for, so requests reuse it); one missing from the store is pinned when first loaded."""
    for name in runners.pins:
        try:
            model = load_model(store, name)
        except ModelNotFound:
            log.warning("LLAMITA_PIN: %s is not in the store; pinned when first loaded", name.shortest)
            continue
        try:
            runner = await runners.acquire(model, merge_options(model.options, None), None)
        except Exception as e:
            log.error("LLAMITA_PIN: could not load %s: %s", name.shortest, e)
            continue
        runners.release(runner)
        log.info("pinned %s", model.short_name)
