"""The runtime's refusals and failures, as domain errors.

The runtime knows nothing of HTTP: it raises these (and the engine's ``QueueFull``, the
prompt's ``PromptTooLong``), and ``api/errors.py`` maps each type to a status in one table.
The messages are Ollama's, word for word: clients and tests match on them.
"""

from __future__ import annotations


class InvalidRequest(ValueError):
    """The request cannot be served as sent (Ollama's 400s)."""


class ModelMissing(LookupError):
    """The named model is not in the store (a 404, with the route's own wording)."""


class Canceled(Exception):
    """The request was superseded by a newer one of its session, or aborted (a 499)."""


class Failed(RuntimeError):
    """The server could not serve a valid request: a load or generation failure (a 500)."""
