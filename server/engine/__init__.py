"""One loaded model's inference engine (the only package that touches llama.cpp).

This is the façade: the runtime imports what it needs from here, never from the modules inside.
"""

from __future__ import annotations

from .core import Engine, EngineFailed, EngineStats
from .embed import EmbeddingError
from .request import CANCELED, SUPERSEDED, Done, Event, FinishReason, SamplingParams, Token
from .sampling import GrammarError, format_grammar
from .scheduler import QueueFull

__all__ = [
    "CANCELED",
    "SUPERSEDED",
    "Done",
    "EmbeddingError",
    "Engine",
    "EngineFailed",
    "EngineStats",
    "Event",
    "FinishReason",
    "GrammarError",
    "QueueFull",
    "SamplingParams",
    "Token",
    "format_grammar",
]
