"""server.prompt."""
