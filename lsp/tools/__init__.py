"""Command-line tools, not LSP: ``llamita pr`` (``pr``, ``describe_pr``, ``diffbudget``) and
``llamita review`` (``review``, the pre-commit hook), over ``gitdiff`` and the TOML settings
of ``userconfig``.

They share the editor side's client (``llamita.lsp.client``) and the review engine
(``llamita.lsp.review``), but nothing here speaks the language-server protocol.
"""
