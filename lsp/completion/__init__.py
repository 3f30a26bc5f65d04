"""Inline (FIM) completions: from a cursor in a document to a post-processed suggestion.

``engine`` runs one request (cache, debounce, cancel-previous, ``/api/generate``); ``context`` cuts the
keystroke-stable window, ``syntax`` decides none/single/multi-line, ``fim`` builds the request body,
``filters`` cleans the model's text, ``cache`` and ``debounce`` save model calls; ``repocontext``
puts code from the rest of the repository before the prefix (``imports`` and ``definitions``: what the
file imports; ``snippets`` and ``recent``: similar code in other open and recently edited files), and
``repo`` writes the repo-level format for models trained on it; ``acceptance``
counts what the editor did with the suggestions and posts the numbers to the server. No LSP types here:
offsets are ``str`` indices; ``llamita.lsp.server`` translates positions.
"""
