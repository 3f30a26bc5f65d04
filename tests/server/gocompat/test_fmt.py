"""Go's fmt and strconv printing: %v, %#v, %q and float formatting."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from llamita.server.gocompat.fmt import format_float, format_value, param_value, sprint, sprintf


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.5, "0.5"), (0.1, "0.1"), (42, "42"), (True, "true"), (["a", "b c"], "[a b c]")],
    ids=["half", "float32", "int", "bool", "list"],
)
def test_param_value_float32(value: Any, text: str) -> None:
    assert param_value(value, bits=32) == text


@pytest.mark.parametrize(
    ("value", "mode", "text"),
    [
        (1e6, "g", "1e+06"),
        (123456.0, "g", "123456"),
        (1234567.0, "g", "1.234567e+06"),
        (0.0001, "g", "0.0001"),
        (0.00001, "g", "1e-05"),
        (3.0, "g", "3"),
        (-0.0, "g", "-0"),
        (0.1 + 0.2, "g", "0.30000000000000004"),
        (1e21, "f", "1000000000000000000000"),
        (1e-7, "f", "0.0000001"),
        (12.5, "e", "1.25e+01"),
        (0.0, "e", "0e+00"),
        (math.inf, "g", "+Inf"),
        (-math.inf, "g", "-Inf"),
        (math.nan, "g", "NaN"),
    ],
    ids=lambda v: str(v),
)
def test_format_float(value: float, mode: str, text: str) -> None:
    assert format_float(value, mode) == text


@dataclasses.dataclass
class Point:
    X: int
    Y: Any = None


class Named:
    def __str__(self) -> str:
        return "named!"


@pytest.mark.parametrize(
    ("value", "top", "text"),
    [
        (None, True, "<no value>"),
        (None, False, "<nil>"),
        ([None, "a", 1, True, 2.5], True, "[<nil> a 1 true 2.5]"),
        ({"b": 1, "a": [1, {"z": None}]}, True, "map[a:[1 map[z:<nil>]] b:1]"),
        ({2: "b", 10: "a", 1: "c"}, True, "map[1:c 2:b 10:a]"),
        (b"hi", True, "[104 105]"),
        (Point(1), True, "{1 <nil>}"),
        ([Point(1, [2])], True, "[{1 [2]}]"),
        (Named(), True, "named!"),
        ({"k": Named()}, True, "map[k:named!]"),
        ((1, 2), True, "[1 2]"),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_format_value(value: Any, top: bool, text: str) -> None:
    assert format_value(value, top) == text


def test_sprint_spacing() -> None:
    assert sprint("a", 1, 2, "b", None, 3.0) == "a1 2b<nil> 3"
    assert sprintf("%s=%d", "x", 1) == "x=1"
