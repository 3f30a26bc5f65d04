"""lsp.completion."""
