"""lsp.tools."""
