"""What the executor and the function map share: the function spec, the error a function
returns, and Go template truth.  Both import it, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class FuncError(Exception):
    """An error returned by a template function; execution reports ``error calling <name>: ...``."""


class GoFunc(NamedTuple):
    """A function in the template's function map, with the arity Go checks before the call."""

    fn: Callable[..., Any]
    min_args: int
    max_args: int | None  # None: variadic
    short_circuit: bool = False  # and/or: arguments are evaluated lazily by the executor


def is_true(v: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings/slices/maps are false; structs are true."""
    if v is None:
        return False
    if isinstance(v, (bool, int, float, complex)):
        return v != 0
    if hasattr(v, "__len__"):
        return len(v) > 0
    return True
