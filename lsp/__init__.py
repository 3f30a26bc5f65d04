"""llamita language server (talks HTTP to any Ollama-compatible server)."""
