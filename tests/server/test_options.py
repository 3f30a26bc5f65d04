"""Tests for llamita.server.options: Ollama's option table, FormatParams and FromMap."""

from __future__ import annotations

import json
import logging

import pytest

from llamita.server import options
from llamita.server.options import (
    DEFAULTS,
    DEPRECATED_OPTIONS,
    OPTION_TYPES,
    REMOVED_OPTIONS,
    RUNNER_OPTIONS,
    OptionError,
    default_options,
    format_params,
    validate_request_options,
)

# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------


def test_table_and_defaults_cover_the_same_names() -> None:
    assert set(DEFAULTS) == set(OPTION_TYPES)
    assert set(OPTION_TYPES) >= RUNNER_OPTIONS
    assert not (DEPRECATED_OPTIONS | REMOVED_OPTIONS) & set(OPTION_TYPES)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("num_ctx", 0),
        ("num_batch", 512),
        ("num_gpu", -1),
        ("main_gpu", None),
        ("use_mmap", None),
        ("num_thread", 0),
        ("draft_num_predict", 4),
        ("num_keep", 4),
        ("seed", -1),
        ("num_predict", -1),
        ("top_k", 40),
        ("top_p", 0.9),
        ("min_p", 0.0),
        ("typical_p", 1.0),
        ("repeat_last_n", 64),
        ("temperature", 0.8),
        ("repeat_penalty", 1.0),
        ("presence_penalty", 0.0),
        ("frequency_penalty", 0.0),
        ("stop", []),
    ],
)
def test_defaults_match_ollama(name: str, value: object) -> None:
    assert DEFAULTS[name] == value
    if value is not None:
        assert isinstance(DEFAULTS[name], OPTION_TYPES[name])


def test_default_options_is_a_deep_copy() -> None:
    first = default_options()
    first["stop"].append("x")  # type: ignore[union-attr]
    first["top_k"] = 1
    assert DEFAULTS["stop"] == []
    assert default_options()["top_k"] == 40


# --------------------------------------------------------------------------------------------
# format_params (Modelfile PARAMETER, /set parameter)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"num_ctx": ["4096"]}, {"num_ctx": 4096}, id="int"),
        pytest.param({"seed": ["-1"]}, {"seed": -1}, id="negative-int"),
        pytest.param({"top_k": ["+7"]}, {"top_k": 7}, id="plus-signed-int"),
        pytest.param({"num_predict": ["9223372036854775807"]}, {"num_predict": 2**63 - 1}, id="int64-max"),
        pytest.param({"main_gpu": ["0"]}, {"main_gpu": 0}, id="pointer-int-zero"),
        pytest.param({"temperature": ["0.7"]}, {"temperature": 0.7}, id="float"),
        pytest.param({"top_p": ["1"]}, {"top_p": 1.0}, id="float-from-int-text"),
        pytest.param({"min_p": [".05"]}, {"min_p": 0.05}, id="float-leading-dot"),
        pytest.param({"typical_p": ["1."]}, {"typical_p": 1.0}, id="float-trailing-dot"),
        pytest.param({"repeat_penalty": ["1e0"]}, {"repeat_penalty": 1.0}, id="float-exponent"),
        pytest.param({"presence_penalty": ["-1.5E-1"]}, {"presence_penalty": -0.15}, id="float-neg-exponent"),
        pytest.param({"temperature": ["1_0.2_5"]}, {"temperature": 10.25}, id="float-underscores"),
        pytest.param({"temperature": ["0x1.8p1"]}, {"temperature": 3.0}, id="float-hex"),
        pytest.param({"temperature": ["3.4028235e38"]}, {"temperature": 3.4028235e38}, id="float32-max"),
        pytest.param({"use_mmap": ["true"]}, {"use_mmap": True}, id="bool-true"),
        pytest.param({"use_mmap": ["F"]}, {"use_mmap": False}, id="bool-F"),
        pytest.param({"use_mmap": ["1"]}, {"use_mmap": True}, id="bool-1"),
        pytest.param({"use_mmap": ["FALSE"]}, {"use_mmap": False}, id="bool-FALSE"),
        pytest.param({"stop": ["<|im_end|>"]}, {"stop": ["<|im_end|>"]}, id="stop-single"),
        pytest.param({"stop": ["a", "b", "c"]}, {"stop": ["a", "b", "c"]}, id="stop-keeps-all"),
        pytest.param({"stop": []}, {"stop": []}, id="stop-empty"),
        pytest.param({"top_k": ["1", "2"]}, {"top_k": 1}, id="scalar-takes-first-value"),
        pytest.param(
            {"num_ctx": ["8"], "temperature": ["0"], "stop": ["x"]},
            {"num_ctx": 8, "temperature": 0.0, "stop": ["x"]},
            id="several",
        ),
    ],
)
def test_format_params_accepts(params: dict[str, list[str]], expected: dict[str, object]) -> None:
    result = format_params(params)
    assert result == expected
    for name, value in result.items():
        assert type(value) is OPTION_TYPES[name]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"foo": ["1"]}, "unknown parameter 'foo'", id="unknown"),
        pytest.param({"Temperature": ["1"]}, "unknown parameter 'Temperature'", id="case-sensitive"),
        pytest.param({"numa": ["true"]}, "unknown parameter 'numa'", id="removed-numa"),
        pytest.param({"num_gqa": ["8"]}, "unknown parameter 'num_gqa'", id="removed-num_gqa"),
        pytest.param({"tfs_z": ["1"]}, "unknown parameter 'tfs_z'", id="removed-tfs_z"),
        pytest.param({"": ["x"]}, "unknown parameter ''", id="empty-name"),
        pytest.param({"num_ctx": ["abc"]}, "invalid int value [abc]", id="int-word"),
        pytest.param({"num_ctx": ["1.5"]}, "invalid int value [1.5]", id="int-fraction"),
        pytest.param({"num_ctx": [" 1"]}, "invalid int value [ 1]", id="int-space"),
        pytest.param({"num_ctx": ["1_000"]}, "invalid int value [1_000]", id="int-underscore"),
        pytest.param({"num_ctx": ["0x10"]}, "invalid int value [0x10]", id="int-hex"),
        pytest.param({"num_ctx": ["١٢"]}, "invalid int value [١٢]", id="int-arabic-digits"),
        pytest.param(
            {"seed": ["9223372036854775808"]}, "invalid int value [9223372036854775808]", id="int-overflow"
        ),
        pytest.param({"main_gpu": ["x"]}, "invalid int value [x]", id="pointer-int"),
        pytest.param({"num_ctx": ["a", "b"]}, "invalid int value [a b]", id="int-prints-all-values"),
        pytest.param({"num_ctx": []}, "invalid int value []", id="int-no-value"),
        pytest.param({"temperature": ["hot"]}, "invalid float value [hot]", id="float-word"),
        pytest.param({"temperature": [""]}, "invalid float value []", id="float-empty"),
        pytest.param({"temperature": ["1e39"]}, "invalid float value [1e39]", id="float32-overflow"),
        pytest.param(
            {"temperature": ["-3.4028236e38"]},
            "invalid float value [-3.4028236e38]",
            id="float32-rounds-past-max",
        ),
        pytest.param({"temperature": ["inf"]}, "invalid float value [inf]", id="float-inf"),
        pytest.param({"temperature": ["NaN"]}, "invalid float value [NaN]", id="float-nan"),
        pytest.param({"temperature": ["1__0"]}, "invalid float value [1__0]", id="float-double-underscore"),
        pytest.param({"temperature": ["_1"]}, "invalid float value [_1]", id="float-leading-underscore"),
        pytest.param({"temperature": ["0x1.8"]}, "invalid float value [0x1.8]", id="float-hex-no-exponent"),
        pytest.param({"temperature": ["1e"]}, "invalid float value [1e]", id="float-bare-exponent"),
        pytest.param({"temperature": ["0.5 "]}, "invalid float value [0.5 ]", id="float-trailing-space"),
        pytest.param({"use_mmap": ["yes"]}, "invalid bool value [yes]", id="bool-yes"),
        pytest.param({"use_mmap": ["tRUE"]}, "invalid bool value [tRUE]", id="bool-mixed-case"),
        pytest.param({"use_mmap": ["2"]}, "invalid bool value [2]", id="bool-2"),
    ],
)
def test_format_params_rejects(params: dict[str, list[str]], message: str) -> None:
    with pytest.raises(OptionError) as info:
        format_params(params)
    assert str(info.value) == message


@pytest.mark.parametrize("name", sorted(DEPRECATED_OPTIONS))
def test_format_params_skips_deprecated_with_warning(name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llamita.server.options"):
        assert format_params({name: ["1"], "top_k": ["3"]}) == {"top_k": 3}
    assert f"parameter {name} is deprecated" in caplog.text


def test_format_params_string_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table has no string option today; the string branch must still take the first value."""
    monkeypatch.setitem(options.OPTION_TYPES, "renderer_hint", str)
    assert format_params({"renderer_hint": ["a", "b"]}) == {"renderer_hint": "a"}
    with pytest.raises(OptionError, match=r"^invalid string value \[\]$"):
        format_params({"renderer_hint": []})


def test_format_params_does_not_alias_the_input_list() -> None:
    values = ["a"]
    result = format_params({"stop": values})
    values.append("b")
    assert result == {"stop": ["a"]}


# --------------------------------------------------------------------------------------------
# validate_request_options (request "options", FromMap)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("{}", {}, id="empty"),
        pytest.param('{"num_ctx": 2048}', {"num_ctx": 2048}, id="int"),
        pytest.param('{"num_ctx": 2048.9}', {"num_ctx": 2048}, id="int-from-float-truncates"),
        pytest.param('{"seed": -3.7}', {"seed": -3}, id="int-truncates-toward-zero"),
        pytest.param('{"main_gpu": 1}', {"main_gpu": 1}, id="pointer-int"),
        pytest.param('{"temperature": 0.2}', {"temperature": 0.2}, id="float"),
        pytest.param('{"temperature": 1}', {"temperature": 1.0}, id="float-from-int"),
        pytest.param('{"use_mmap": false}', {"use_mmap": False}, id="bool"),
        pytest.param('{"stop": ["a", "b"]}', {"stop": ["a", "b"]}, id="array"),
        pytest.param('{"stop": []}', {"stop": []}, id="empty-array"),
        pytest.param('{"temperature": null, "top_k": 5}', {"top_k": 5}, id="null-is-unset"),
        pytest.param('{"bogus": 1, "top_k": 5}', {"top_k": 5}, id="unknown-dropped"),
        pytest.param('{"Top_K": "x"}', {}, id="unknown-not-type-checked"),
        pytest.param(
            '{"mirostat": 2, "numa": true, "tfs_z": 1.0, "low_vram": false, "num_gqa": 8}',
            {},
            id="deprecated-and-removed-ignored",
        ),
    ],
)
def test_validate_request_options_accepts(raw: str, expected: dict[str, object]) -> None:
    result = validate_request_options(json.loads(raw))
    assert result == expected
    for name, value in result.items():
        assert type(value) is OPTION_TYPES[name]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param('{"num_ctx": "2048"}', 'option "num_ctx" must be of type integer', id="int-string"),
        pytest.param('{"num_ctx": true}', 'option "num_ctx" must be of type integer', id="int-bool"),
        pytest.param('{"main_gpu": [0]}', 'option "main_gpu" must be of type integer', id="pointer-int"),
        pytest.param('{"seed": NaN}', 'option "seed" must be of type integer', id="int-nan"),
        pytest.param(
            '{"temperature": "0.5"}', 'option "temperature" must be of type float32', id="float-str"
        ),
        pytest.param(
            '{"temperature": false}', 'option "temperature" must be of type float32', id="float-bool"
        ),
        pytest.param('{"top_p": Infinity}', 'option "top_p" must be of type float32', id="float-inf"),
        pytest.param('{"use_mmap": 1}', 'option "use_mmap" must be of type boolean', id="bool-int"),
        pytest.param('{"use_mmap": "true"}', 'option "use_mmap" must be of type boolean', id="bool-str"),
        pytest.param('{"stop": "###"}', 'option "stop" must be of type array', id="array-str"),
        pytest.param('{"stop": {"a": 1}}', 'option "stop" must be of type array', id="array-object"),
        pytest.param('{"stop": ["a", 1]}', 'option "stop" must be of an array of strings', id="array-mixed"),
        pytest.param('{"stop": [null]}', 'option "stop" must be of an array of strings', id="array-null"),
    ],
)
def test_validate_request_options_rejects(raw: str, message: str) -> None:
    with pytest.raises(OptionError) as info:
        validate_request_options(json.loads(raw))
    assert str(info.value) == message


def test_validate_request_options_logs_unknown_keys(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="llamita.server.options"):
        validate_request_options({"bogus": 1, "mirostat": 0})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["invalid option provided: option=bogus"]


def test_validate_request_options_none_and_non_object() -> None:
    assert validate_request_options(None) == {}
    with pytest.raises(OptionError, match="options must be a JSON object"):
        validate_request_options(["num_ctx"])  # type: ignore[arg-type]


def test_validate_request_options_string_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(options.OPTION_TYPES, "renderer_hint", str)
    assert validate_request_options({"renderer_hint": "x"}) == {"renderer_hint": "x"}
    with pytest.raises(OptionError, match=r'^option "renderer_hint" must be of type string$'):
        validate_request_options({"renderer_hint": 1})


def test_validate_request_options_copies_lists() -> None:
    stop = ["a"]
    result = validate_request_options({"stop": stop})
    stop.append("b")
    assert result == {"stop": ["a"]}


# --------------------------------------------------------------------------------------------
# The edge rule: resource options are clamped, never refused (RESOURCE_BOUNDS)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # num_ctx: 0 = automatic; below 4 raised to 4 (Ollama's scheduler); absurd sizes bounded.
        pytest.param({"num_ctx": 0}, 0, id="num_ctx-auto"),
        pytest.param({"num_ctx": 1}, 4, id="num_ctx-tiny"),
        pytest.param({"num_ctx": -5}, 4, id="num_ctx-negative"),
        pytest.param({"num_ctx": 1e30}, options.MAX_NUM_CTX, id="num_ctx-huge-float"),
        pytest.param({"num_ctx": 10**300}, options.MAX_NUM_CTX, id="num_ctx-huge-int"),
        pytest.param({"num_ctx": -1e30}, 4, id="num_ctx-huge-negative"),
        # num_batch: <= 0 is the default (Ollama passes no -b); huge ones bounded.
        pytest.param({"num_batch": 0}, 512, id="num_batch-zero"),
        pytest.param({"num_batch": -1}, 512, id="num_batch-negative"),
        pytest.param({"num_batch": -1e30}, 512, id="num_batch-huge-negative"),
        pytest.param({"num_batch": 1.5}, 1, id="num_batch-fraction"),
        pytest.param({"num_batch": 2_000_000_000}, options.MAX_NUM_CTX, id="num_batch-huge"),
        # num_gpu: any negative = automatic (-1).
        pytest.param({"num_gpu": -7}, -1, id="num_gpu-negative"),
        pytest.param({"num_gpu": 1e30}, 2**31 - 1, id="num_gpu-huge"),
        # num_thread: negative = automatic (0); at most GGML_MAX_N_THREADS.
        pytest.param({"num_thread": -3}, 0, id="num_thread-negative"),
        pytest.param({"num_thread": 1e9}, 512, id="num_thread-huge"),
        # num_predict: any negative = until a stop condition.
        pytest.param({"num_predict": -2}, -1, id="num_predict-negative"),
        pytest.param({"num_predict": 1e30}, 2**31 - 1, id="num_predict-huge"),
        # repeat_last_n: -1 = num_ctx, other negatives = off; the window is bounded.
        pytest.param({"repeat_last_n": -1}, -1, id="repeat_last_n-ctx"),
        pytest.param({"repeat_last_n": -9}, 0, id="repeat_last_n-negative"),
        pytest.param({"repeat_last_n": 2**40}, options.MAX_NUM_CTX, id="repeat_last_n-huge"),
        pytest.param({"top_k": -5}, 0, id="top_k-negative"),
        pytest.param({"seed": 10**30}, 2**63 - 1, id="seed-saturates-int64"),
        pytest.param({"num_ctx": 8192}, 8192, id="in-range-unchanged"),
    ],
)
def test_resource_options_are_clamped(given: dict[str, object], expected: int) -> None:
    ((_name, value),) = validate_request_options(given).items()
    assert (value, type(value)) == (expected, int)


def test_float_options_beyond_float32_are_refused() -> None:
    """Go would store +Inf in the float32 field; a sampler must never see it."""
    with pytest.raises(OptionError, match='option "temperature" must be of type float32'):
        validate_request_options({"temperature": 1e39})
    assert validate_request_options({"temperature": 3.4e38}) == {"temperature": 3.4e38}


def test_validate_parameters() -> None:
    """create's parameters: FromMap's types, FormatParams' names, deprecated names kept."""
    options.validate_parameters({"top_k": 1, "stop": ["a"], "mirostat": 1, "penalize_newline": True})
    for params, message in [
        ({"top_k": "abc"}, 'option "top_k" must be of type integer'),
        ({"stop": 5}, 'option "stop" must be of type array'),
        ({"nope": 1}, "unknown parameter 'nope'"),
        ({"mirostat_eta": "x"}, 'option "mirostat_eta" must be of type float32'),
        ({"temperature": float("nan")}, 'option "temperature" must be of type float32'),
        ({"top_p": float("inf")}, 'option "top_p" must be of type float32'),
    ]:
        with pytest.raises(OptionError) as info:
            options.validate_parameters(params)
        assert str(info.value) == message
    with pytest.raises(OptionError, match="parameters must be a JSON object"):
        options.validate_parameters(["top_k"])  # type: ignore[arg-type]


def test_merge_options_types_and_clamps_every_layer(caplog: pytest.LogCaptureFixture) -> None:
    model = {
        "num_thread": 100_000,  # a valid Modelfile int, clamped like a request value
        "top_k": "abc",  # a bad stored value: left out, the model keeps answering
        "mirostat": 2,  # deprecated, but the sampler reads it
        "stop": ["<|im_end|>"],
        "tfs_z": 1.0,  # removed: ignored
    }
    with caplog.at_level(logging.WARNING, logger="llamita.server.options"):
        merged = options.merge_options(model, {"num_ctx": 1, "temperature": 0})
    assert merged["num_thread"] == 512
    assert merged["top_k"] == 40
    assert merged["mirostat"] == 2
    assert merged["stop"] == ["<|im_end|>"]
    assert "tfs_z" not in merged
    assert (merged["num_ctx"], merged["temperature"]) == (4, 0.0)
    assert merged["num_batch"] == 512 and merged["seed"] == -1  # defaults fill the rest
    assert any("top_k" in r.getMessage() for r in caplog.records)
    with pytest.raises(OptionError, match='option "top_p" must be of type float32'):
        options.merge_options(model, {"top_p": "x"})
    assert options.merge_options(None, None) == options.default_options()
