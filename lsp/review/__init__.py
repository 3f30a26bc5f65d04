"""Code review: findings from a chat model, anchored to the code they quote.

``engine`` (JSON-schema findings, chunking, re-anchoring after edits) is shared by the language server's
review diagnostics and by ``llamita review`` (``lsp/tools/review.py``, the pre-commit hook);
``diagnostics`` turns findings into LSP diagnostics and quick fixes.
"""
