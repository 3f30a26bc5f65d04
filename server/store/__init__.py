"""Ollama's on-disk model store: names, blobs and manifests (a leaf: it imports no other wing).

:mod:`.names` is the model-name grammar, :mod:`.blobs` the :class:`~.blobs.Store` (content-addressed
blobs, manifests, atomic writes), :mod:`.state` what lives beside one store in a process (name
locks, the resolved-model cache, downloads in flight).
"""
