"""Why a pull or a push failed, as exceptions whose messages are what the user reads.

Every class takes its full message, so a caller can re-raise the same kind with context
(``pull model manifest: file does not exist``).  The HTTP status is decided in
``server/api/errors.py``; Ollama answers 500 for every pull/push failure.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base class: the registry, the network or the data it sent made the transfer fail."""

    def with_context(self, context: str) -> RegistryError:
        """The same kind of error with ``context: `` in front of the message."""
        return type(self)(f"{context}: {self}")


class InsecureProtocol(RegistryError):
    """Raised when a name says ``http://`` but the request did not set ``insecure``."""

    def __init__(self, message: str = "insecure protocol http") -> None:
        super().__init__(message)


class NotFound(RegistryError):
    """Raised on a 404: Ollama reports Go's ``os.ErrNotExist`` text, so clients can match it."""

    def __init__(self, message: str = "file does not exist") -> None:
        super().__init__(message)


class Unauthorized(RegistryError):
    """Raised on 401 (after the one allowed credential/token retry) and on 403."""


class RegistryUnavailable(RegistryError):
    """Raised when the registry cannot be reached, keeps failing (5xx) or stalls, after retries."""


class CorruptDownload(RegistryError):
    """Raised when a downloaded blob does not hash to its digest; the bad file is already gone."""


class NotEnoughSpace(RegistryError):
    """Raised before anything is written when the blobs a pull needs do not fit on the disk."""


class Cancelled(RegistryError):
    """Raised inside a download whose every waiter went away (it resumes on the next pull)."""

    def __init__(self, message: str = "download cancelled") -> None:
        super().__init__(message)
