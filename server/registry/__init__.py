"""Pull models from and push them to Ollama-compatible (OCI distribution) registries.

- :mod:`.client`: URLs, auth challenges, retries and error messages for one registry.
- :mod:`.auth`: credentials (``LLAMITA_REGISTRY_AUTH``, Docker's config.json) and challenges.
- :mod:`.parts`: the on-disk state that makes downloads resumable (Ollama's file layout).
- :mod:`.download`: parallel, resumable, shared blob downloads, verified before admission.
- :mod:`.pull` / :mod:`.push`: the two operations, as iterators of Ollama's progress events.
- :mod:`.errors`: why a transfer failed, in words a user can act on.
"""
