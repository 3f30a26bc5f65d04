"""llamita: an Ollama-compatible model runtime for editors."""

__version__ = "0.1.0"
