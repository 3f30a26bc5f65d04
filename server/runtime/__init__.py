"""server.runtime."""
