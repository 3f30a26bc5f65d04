"""server.model."""
