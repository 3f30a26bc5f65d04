"""llamita's editor side: talks HTTP to any Ollama-compatible server and never imports ``llamita.server``.

The language server (``llamita lsp``) is the top level: ``__main__`` (entry point), ``features`` (the
LSP method table, :func:`~llamita.lsp.features.create_server`), ``server`` (per-session state),
``settings`` (editor settings), ``status``. Shared by everything here: ``client`` (the one HTTP client),
``config`` (the environment), ``prompts`` and ``tokens``. The sub-packages:

- ``completion/``: FIM inline completions (LSP-free engine);
- ``review/``: the review engine, shared by the diagnostics and ``llamita review``;
- ``tools/``: the command-line tools ``llamita pr`` and ``llamita review`` (not LSP).
"""
