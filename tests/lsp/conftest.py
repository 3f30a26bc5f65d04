"""Fixtures for the language-server tests, from ``tests/modelproxy.py``: ``proxy`` (a recording proxy
in front of the real llamita ``server`` fixture of ``tests/conftest.py``) and ``tiny_coder`` (a FIM model)."""

from __future__ import annotations

from modelproxy import proxy, tiny_coder

__all__ = ["proxy", "tiny_coder"]
