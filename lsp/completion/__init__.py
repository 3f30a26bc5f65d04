"""Inline (FIM) completions: from a cursor in a document to a post-processed suggestion.

``engine`` runs one request (cache, debounce, cancel-previous, ``/api/generate``); ``context`` cuts the
keystroke-stable window, ``syntax`` decides none/single/multi-line, ``fim`` builds the request body,
``filters`` cleans the model's text, ``cache`` and ``debounce`` save model calls; ``acceptance``
counts what the editor did with the suggestions and posts the numbers to the server. No LSP types here:
offsets are ``str`` indices; ``llamita.lsp.server`` translates positions.
"""
