"""Fixtures for the language-server tests: ``proxy`` (a recording proxy in front of the real llamita
``server`` fixture of ``tests/conftest.py``) and ``tiny_coder`` (a FIM-capable model). Both are defined in
``tests/modelproxy.py``, which the client tests (``tests/clients/``) import them from too."""

from __future__ import annotations

from modelproxy import proxy, tiny_coder

__all__ = ["proxy", "tiny_coder"]
