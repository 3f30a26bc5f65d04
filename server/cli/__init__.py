"""``llamita`` command line: an HTTP client of the server, like Ollama's, except ``serve``."""
