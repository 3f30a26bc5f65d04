"""Fixtures for the real-client tests: ``tiny_coder``, a FIM-capable GGUF (``tests/fimmodel.py``)."""

from __future__ import annotations

from fimmodel import tiny_coder

__all__ = ["tiny_coder"]
