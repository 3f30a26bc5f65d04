"""Go template truth (``if``, ``with``, ``and``/``or``/``not``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from llamita.server.template.values import is_true


@dataclasses.dataclass
class Point:
    X: int
    Y: Any = None


@pytest.mark.parametrize(
    ("value", "truth"),
    [
        (None, False),
        (False, False),
        (0, False),
        (0.0, False),
        ("", False),
        ([], False),
        ({}, False),
        (True, True),
        (-1, True),
        ("0", True),
        ([0], True),
        ({"": None}, True),
        (Point(0), True),
    ],
    ids=repr,
)
def test_is_true(value: Any, truth: bool) -> None:
    assert is_true(value) is truth
