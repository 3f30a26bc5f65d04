"""lsp.review."""
