"""The runtime between the HTTP layer and the engine: which models are loaded, and the pipeline.

:mod:`.generate` is the one generate/chat pipeline (typed request in, events out; no Starlette):
:mod:`.requests` holds the typed requests, :mod:`.prepare` the shared prologue, :mod:`.kinds` what
differs between generate and chat, :mod:`.embed` embeddings, :mod:`.errors` its domain errors.
:mod:`.runners` loads and evicts models (Ollama's scheduler), :mod:`.memory` estimates GPU layers,
:mod:`.metrics` exports Prometheus metrics from the engines' stats.
"""
