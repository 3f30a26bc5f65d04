"""Go behaviours Ollama's wire format and texts depend on, each in exactly one place.

Digests, error messages and ``/api/show`` output must match Ollama's byte for byte, so the Go rules
they come from live here and nowhere else: :mod:`.json` (the one ``encoding/json`` encoder),
:mod:`.decode` (Go's decoder rules and its type errors), :mod:`.fmt` (``%v``/``%q``/strconv floats),
:mod:`.time` (``ParseDuration``, ``Duration.String``, RFC 3339) and :mod:`.net` (``SplitHostPort``,
``OLLAMA_HOST``).  The template engine's ``json`` and ``printf`` builtins call into them too.
"""
