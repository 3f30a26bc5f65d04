"""Request bodies decoded with Go's encoding/json rules, and Go's field-type errors."""

from __future__ import annotations

import json

import pytest

from llamita.server.gocompat.decode import MAX_DEPTH, BodyError, FieldTypeError, check_struct, decode, go_kind


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b'{"a": NaN}', "invalid character 'N' looking for beginning of value", id="nan"),
        pytest.param(b'{"a": Infinity}', "invalid character 'I'", id="infinity"),
        pytest.param(b'{"a": -Infinity}', "invalid character '-'", id="minus-infinity"),
        pytest.param(b'{"a": 1e400}', "number 1e400 is out of range", id="float-overflow"),
        pytest.param(b'{"a": -1e400}', "number -1e400 is out of range", id="float-overflow-negative"),
        pytest.param(b'{"a": ' + b"9" * 4300 + b"}", "(4300 characters) is out of range", id="int-4300"),
        pytest.param(b'{"a": -' + b"9" * 5000 + b"}", "is out of range", id="int-5000-negative"),
        pytest.param(b'{"a": ' + b"9" * 310 + b"}", "is out of range", id="int-past-float64"),
        pytest.param(b"[" * 1000 + b"]" * 1000, f"nesting depth exceeds {MAX_DEPTH}", id="deep-1000"),
        pytest.param(b"[" * 100_000, f"nesting depth exceeds {MAX_DEPTH}", id="deep-unclosed"),
        pytest.param(b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), "nesting", id="deep-201"),
        pytest.param(b"{not json", "Expecting property name", id="malformed"),
    ],
)
def test_hostile_bodies_are_errors(raw: bytes, message: str) -> None:
    with pytest.raises(BodyError) as info:
        decode(raw)
    assert message in str(info.value)
    assert len(str(info.value)) < 200  # a 4,300-digit number is not echoed back whole


def test_limits_are_inclusive() -> None:
    deep = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert decode(deep) is not None
    big = "1" + "0" * 307  # 1e307 fits a float64
    assert decode(f'{{"a": {big}}}'.encode()) == {"a": int(big)}
    assert decode(b'{"a": 1.5e308, "b": -0.0}') == {"a": 1.5e308, "b": -0.0}


def test_lone_surrogates_become_replacement_characters() -> None:
    """Go turns an unpaired \\ud800 into U+FFFD; the value must encode as UTF-8 afterwards."""
    raw = rb'{"prompt": "a\ud800b", "\udfffkey": ["\udc00", {"x": "\ud83d\ude00 ok"}], "n": 1}'
    value = decode(raw)
    assert value == {"prompt": "a\ufffdb", "\ufffdkey": ["\ufffd", {"x": "\U0001f600 ok"}], "n": 1}
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    assert decode(rb'"\ud800"') == "\ufffd"


def test_invalid_utf8_in_strings_is_replaced() -> None:
    assert decode(b'{"a": "x\xffy"}') == {"a": "x\ufffdy"}
    with pytest.raises(BodyError):
        decode(b'{"a": 1\xff}')


def test_wide_bodies_are_not_deep() -> None:
    """Many brackets side by side (a long message list) are fine."""
    raw = json.dumps({"messages": [{"role": "user", "content": str(i)} for i in range(5000)]}).encode()
    assert len(decode(raw)["messages"]) == 5000


def test_go_kind() -> None:
    assert [go_kind(v) for v in ("s", 1, 1.5, True, [], {}, None)] == [
        "string",
        "number",
        "number",
        "bool",
        "array",
        "object",
        "object",
    ]


SPEC = {
    "model": "string",
    "stream": "bool",
    "files": "map[string]string",
    "options": "map[string]interface {}",
    "license": "interface {}",
    "messages": "[]api.Message",
}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": 5}, "cannot unmarshal number into Go struct field R.model of type string"),
        ({"model": float("inf")}, "cannot unmarshal number into Go struct field R.model of type string"),
        ({"stream": "no"}, "cannot unmarshal string into Go struct field R.stream of type bool"),
        ({"files": []}, "cannot unmarshal array into Go struct field R.files of type map[string]string"),
        ({"files": {"a": 1}}, "cannot unmarshal number into Go struct field R.files of type string"),
        ({"options": "x"}, "cannot unmarshal string into Go struct field R.options"),
        ({"messages": [1]}, "cannot unmarshal number into Go struct field R.messages of type api.Message"),
        ({"messages": [{"content": []}]}, "Go struct field Message.messages.content of type string"),
        ({"messages": [{"images": [1]}]}, "Go struct field Message.messages.images of type api.ImageData"),
        ({"messages": [{"tool_calls": "x"}]}, "Message.messages.tool_calls of type []api.ToolCall"),
    ],
)
def test_check_struct_refuses(body: dict, message: str) -> None:
    with pytest.raises(FieldTypeError) as info:
        check_struct(body, "R", SPEC)
    assert str(info.value).startswith("json: cannot unmarshal ")
    assert message in str(info.value)


def test_check_struct_accepts_nulls_unknown_keys_and_any() -> None:
    body = {"model": None, "stream": None, "other": 5, "license": [1, "x"], "messages": [{"role": "user"}]}
    check_struct(body, "R", SPEC)
