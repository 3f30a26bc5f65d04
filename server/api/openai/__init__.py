"""server.api.openai."""
