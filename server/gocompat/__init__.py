"""server.gocompat."""
