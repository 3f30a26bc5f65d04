"""push.py: uploading a stored model's blobs and manifest to a real docker-registry."""

from __future__ import annotations

import pytest

from llamita.server.registry.errors import NotFound
from llamita.server.registry.pull import pull
from llamita.server.registry.push import push
from llamita.server.store.blobs import Store

from .regkit import Registry, drain, synthetic_model


def test_not_found_blob_on_push_source(store: Store, registry: Registry) -> None:
    """Pushing a model whose manifest names a blob that is gone fails before any upload."""
    name, digest = synthetic_model(store, f"{registry.host}/team/model:1", 10_000)
    store.blob_path(digest).unlink()
    with pytest.raises(Exception, match="missing from the store"):
        drain(push(store, name, insecure=True))
    with pytest.raises(NotFound):
        drain(pull(Store(store.root.parent / "other"), name, insecure=True))
