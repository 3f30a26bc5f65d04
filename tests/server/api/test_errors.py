"""api/errors.py: one table from domain errors to HTTP statuses, and Ollama's error body."""

from __future__ import annotations

import json

import pytest

from llamita.server.api.errors import HANDLED, APIError, error_response, status_of
from llamita.server.engine import EmbeddingError, QueueFull
from llamita.server.model.model import ModelNotFound
from llamita.server.prompt.fit import PromptTooLong
from llamita.server.runtime.errors import Canceled, Failed, InvalidRequest, ModelMissing
from llamita.server.store.names import InvalidName


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest("bad"), 400),
        (PromptTooLong(), 400),
        (EmbeddingError("too long"), 400),
        (ModelMissing("model 'x' not found"), 404),
        (Canceled("request canceled"), 499),
        (Failed("failed to load model x"), 500),
        (QueueFull(), 503),
        (ModelNotFound("x"), 404),
        (APIError("teapot", 418), 418),
        (RuntimeError("a bug"), 500),
    ],
)
def test_status_of(error: Exception, status: int) -> None:
    assert status_of(error) == status


@pytest.mark.parametrize("kind", [InvalidRequest, ModelMissing, Canceled, Failed, QueueFull, InvalidName])
def test_domain_errors_are_handled(kind: type[Exception]) -> None:
    assert issubclass(kind, HANDLED)  # answered with their status, not logged as a bug


def test_error_response_is_ollamas_body() -> None:
    r = error_response("model 'x' not found", 404)
    assert r.status_code == 404 and json.loads(r.body) == {"error": "model 'x' not found"}
    assert r.headers["content-type"] == "application/json; charset=utf-8"
