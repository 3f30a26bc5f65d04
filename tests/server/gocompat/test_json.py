"""The Go encoder is what makes digests match Ollama's: pin it with Ollama's own digests."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from llamita.server.gocompat import json as gojson

# Params blobs whose digests appear in Ollama's server/routes_create_test.go.
OLLAMA_PARAMS_DIGESTS = [
    (
        "merge-base",
        {"temperature": 1, "top_k": 10, "stop": ["USER:", "ASSISTANT:"]},
        "1d0ad71299d48c2fb7ae2b98e683643e771f8a5b72be34942af90d97a91c1e37",
    ),
    (
        "merged",
        {"temperature": 0.6, "top_k": 10, "top_p": 0.7, "stop": ["USER:", "ASSISTANT:"]},
        "e29a7b3c47287a2489c895d21fe413c20f859a85d20e749492f52a838e36e1ba",
    ),
    (
        "escaped-stop",
        {"temperature": 0.6, "top_k": 10, "top_p": 0.7, "stop": ["<|endoftext|>"]},
        "12f58bb75cb3042d69a7e013ab87fb3c3c7088f50ddc62f0c77bd332f0d44d35",
    ),
]


@pytest.mark.parametrize(
    ("value", "digest"), [c[1:] for c in OLLAMA_PARAMS_DIGESTS], ids=[c[0] for c in OLLAMA_PARAMS_DIGESTS]
)
def test_params_digests_match_ollama(value: dict, digest: str) -> None:
    assert hashlib.sha256(gojson.encode(value)).hexdigest() == digest


FLOATS = [
    (1.0, "1"),
    (0.7, "0.7"),
    (-2.5, "-2.5"),
    (1e-7, "1e-7"),
    (1e21, "1e+21"),
    (1e20, "100000000000000000000"),
    (0.000001, "0.000001"),
    (3e-05, "0.00003"),
    (123456.789, "123456.789"),
    (0.0, "0"),
    (1.5e300, "1.5e+300"),
]


@pytest.mark.parametrize(("value", "text"), FLOATS, ids=[t for _, t in FLOATS])
def test_float_format(value: float, text: str) -> None:
    assert gojson.format_float(value) == text


def test_float32_shortest() -> None:
    assert gojson.format_float(0.1234567891, bits=32) == "0.12345679"
    assert gojson.format_float(0.7, bits=32) == "0.7"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1, "a": 2}, '{"a":2,"b":1}'),
        (gojson.Struct(b=1, a=2), '{"b":1,"a":2}'),
        ("<a&b>", '"\\u003ca\\u0026b\\u003e"'),
        ("é\u2028", '"é\\u2028"'),
        ("tab\tnl\n", '"tab\\tnl\\n"'),
        ([None, True, False], "[null,true,false]"),
    ],
    ids=["sorted-map", "struct-order", "html-escape", "unicode", "control", "literals"],
)
def test_marshal(value: object, text: str) -> None:
    assert gojson.marshal(value) == text


def test_encode_adds_newline() -> None:
    assert gojson.encode({}) == b"{}\n"


def test_nan_is_rejected() -> None:
    with pytest.raises(ValueError):
        gojson.marshal(float("nan"))


# Go types as the template's ``json`` builtin meets them (structs, ordered and nil values).


@dataclasses.dataclass
class Point:
    X: int
    Y: Any = None


@dataclasses.dataclass
class Tagged:
    Name: str = dataclasses.field(default="", metadata={"json": "name"})
    Note: str = dataclasses.field(default="", metadata={"json": "note,omitempty"})
    Items: Any = dataclasses.field(default=None, metadata={"json": "items,omitempty", "json_nilable": True})
    Skip: str = dataclasses.field(default="x", metadata={"json": "-"})
    Plain: int = 0


class Ordered(dict[str, Any]):
    go_ordered = True


class NilList(list[Any]):
    go_nil = True


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("<&>\u2028", '"\\u003c\\u0026\\u003e\\u2028"', id="html-escaped"),
        pytest.param("tab\t\x01é", '"tab\\t\\u0001é"', id="control-and-unicode"),
        pytest.param(1.0, "1", id="integral-float"),
        pytest.param(1e21, "1e+21", id="big-float"),
        pytest.param(1e20, "100000000000000000000", id="float-below-1e21"),
        pytest.param(1e-7, "1e-7", id="tiny-float"),
        pytest.param(-0.5, "-0.5", id="negative"),
        pytest.param(12345678901234567890, "12345678901234567890", id="python-int"),
        pytest.param({"b": 1, "a": None}, '{"a":null,"b":1}', id="map-sorted"),
        pytest.param(Ordered(b=1, a=2), '{"b":1,"a":2}', id="ordered-map"),
        pytest.param(NilList(), "null", id="nil-slice"),
        pytest.param([], "[]", id="empty-slice"),
        pytest.param(b"hi", '"aGk="', id="bytes-base64"),
        pytest.param(Tagged("n"), '{"name":"n","Plain":0}', id="struct-omitempty"),
        pytest.param(
            Tagged("n", "x", {}), '{"name":"n","note":"x","items":{},"Plain":0}', id="struct-nilable-kept"
        ),
        pytest.param(Point(1, [True]), '{"X":1,"Y":[true]}', id="untagged-struct"),
    ],
)
def test_marshal_go_types(value: Any, text: str) -> None:
    assert gojson.marshal(value) == text
