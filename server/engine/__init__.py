"""One loaded model's inference engine (the only package that touches llama.cpp).

This is the façade: the runtime imports what it needs from here, never from the modules inside.
"""

from __future__ import annotations

from .core import Engine, EngineFailed, EngineStats
from .cpus import physical_cores
from .embed import EMBED_MIN_TOKENS, EmbeddingError
from .llama import ContextOptions, LoadOptions, supports_gpu
from .request import CANCELED, SUPERSEDED, Done, Event, FinishReason, Priority, SamplingParams, Token
from .sampling import GrammarError, format_grammar
from .scheduler import OwnerQueueFull, QueueFull

__all__ = [
    "CANCELED",
    "EMBED_MIN_TOKENS",
    "SUPERSEDED",
    "ContextOptions",
    "Done",
    "EmbeddingError",
    "Engine",
    "EngineFailed",
    "EngineStats",
    "Event",
    "FinishReason",
    "GrammarError",
    "LoadOptions",
    "OwnerQueueFull",
    "Priority",
    "QueueFull",
    "SamplingParams",
    "Token",
    "format_grammar",
    "physical_cores",
    "supports_gpu",
]
