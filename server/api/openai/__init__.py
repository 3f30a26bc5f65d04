"""OpenAI-compatible ``/v1`` routes as thin translators over the runtime, as Ollama's middleware is.

:mod:`.request` turns a ``/v1`` body into the runtime's typed request (with OpenAI's error shape),
:mod:`.response` turns runtime events into OpenAI chunks and objects, :mod:`.routes` wires them to
``api/stream.py``'s responder with SSE framing.
"""
