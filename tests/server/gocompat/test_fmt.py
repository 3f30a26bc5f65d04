"""Go's fmt and strconv printing: %v, %#v, %q and float formatting."""

from __future__ import annotations

from typing import Any

import pytest

from llamita.server.gocompat.fmt import param_value


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.5, "0.5"), (0.1, "0.1"), (42, "42"), (True, "true"), (["a", "b c"], "[a b c]")],
    ids=["half", "float32", "int", "bool", "list"],
)
def test_param_value_float32(value: Any, text: str) -> None:
    assert param_value(value, bits=32) == text
