"""A model as Ollama defines it: layers in the store, assembled and described.

:mod:`.model` resolves a name to a :class:`~.model.StoredModel` (GGUF, template, system, params);
:mod:`.modelfile` parses Modelfiles and :mod:`.modelfile_plan` turns one into a create request;
:mod:`.create` assembles layers (:mod:`.quantize` when asked); :mod:`.show` writes ``/api/show``;
:mod:`.ggufinfo` reads GGUF metadata, :mod:`.chat_templates` maps a GGUF's Jinja template to a Go
one, and :mod:`.default_model` registers the embedded SmolLM2.  No HTTP here: errors are domain
exceptions that ``api/errors.py`` maps to statuses.
"""
