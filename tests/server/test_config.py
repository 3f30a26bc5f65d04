"""Each environment variable's accessor: defaults, parsing, and the ``describe()`` table."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from llamita.server import config


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", 300.0),
        ("1ns", 1e-9),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("30", 30.0),  # whole seconds, as Ollama's strconv.ParseInt fallback
        ("0", float("inf")),  # zero or negative: no limit
        ("-1", float("inf")),
        ("-5m", float("inf")),
        ("1.5", 300.0),  # neither a duration nor an integer: the default
        ("soon", 300.0),
    ],
)
def test_load_timeout(monkeypatch: pytest.MonkeyPatch, value: str, expected: float) -> None:
    monkeypatch.setenv("OLLAMA_LOAD_TIMEOUT", value)
    assert config.load_timeout() == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 300), ("10m", 600), ("60", 60), ("-1", float("inf")), ("junk", 300), ("'2m'", 120)],
)
def test_keep_alive(monkeypatch: pytest.MonkeyPatch, value: str, expected: float) -> None:
    monkeypatch.setenv("OLLAMA_KEEP_ALIVE", value)
    assert config.keep_alive() == expected


@pytest.mark.parametrize(("value", "expected"), [("", False), ("1", True), ("false", False), ("junk", True)])
def test_bool_rule(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("OLLAMA_NOPRUNE", value)
    assert config.no_prune() is expected


def test_origins_user_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_ORIGINS", "chrome-extension://*,https://a.example")
    origins = config.allowed_origins()
    assert origins[:2] == ["chrome-extension://*", "https://a.example"]
    assert "vscode-webview://*" in origins


def test_models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))
    assert config.models_dir() == tmp_path
    monkeypatch.delenv("OLLAMA_MODELS")
    assert config.models_dir().parts[-2:] == (".ollama", "models")


def _accessors() -> list[Callable[[], object]]:
    """config's public zero-argument functions: one per variable (plus describe)."""
    out = []
    for name, fn in vars(config).items():
        if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != config.__name__:
            continue
        if all(p.default is not p.empty for p in inspect.signature(fn).parameters.values()):
            out.append(fn)
    return out


def test_the_table_and_the_accessors_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []
    real_var = config.var

    def spy(key: str) -> str:
        read.append(key)
        return real_var(key)

    monkeypatch.setattr(config, "var", spy)
    for accessor in _accessors():
        accessor()
    assert set(read) == {v.name for v in config.VARIABLES}


def test_describe_lists_the_server_rows_of_the_table() -> None:
    described = dict(config.describe())
    assert "OLLAMA_FLASH_ATTENTION" in described and "LLAMITA_NO_DEFAULT_MODEL" in described
    assert "LLAMITA_API_KEY" not in described  # the CLI's, not the server's
    assert list(described) == [v.name for v in config.VARIABLES if not v.client]


def test_unknown_variables_are_refused() -> None:
    with pytest.raises(KeyError, match=r"not in config\.VARIABLES"):
        config.var("OLLAMA_NOT_A_SETTING")


@pytest.mark.parametrize(("value", "expected"), [("", None), ("1", True), ("0", False), ("junk", True)])
def test_flash_attention(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool | None) -> None:
    monkeypatch.setenv("OLLAMA_FLASH_ATTENTION", value)
    assert config.flash_attention() is expected


@pytest.mark.parametrize(("value", "expected"), [("", False), ("0", False), ("1", True), ("yes", True)])
def test_no_default_model(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("LLAMITA_NO_DEFAULT_MODEL", value)
    assert config.no_default_model() is expected


@pytest.mark.parametrize(
    ("key", "accessor", "value", "expected"),
    [
        ("OLLAMA_NUM_PARALLEL", config.num_parallel, "junk", 4),
        ("OLLAMA_MAX_QUEUE", config.max_queue, "-5", 512),
        ("LLAMITA_MAX_BODY", config.max_body, "1MiB", 1 << 20),
        ("LLAMITA_MAX_BODY", config.max_body, "lots", 32 << 20),
        ("LLAMITA_BODY_TIMEOUT", config.body_timeout, "90s", 90.0),
        ("LLAMITA_BODY_TIMEOUT", config.body_timeout, "2.5", 2.5),
        ("LLAMITA_BODY_TIMEOUT", config.body_timeout, "soon", 60.0),
    ],
)
def test_parsed_values_fall_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch, key: str, accessor: Callable[[], object], value: str, expected: object
) -> None:
    monkeypatch.setenv(key, value)
    assert accessor() == expected


@pytest.mark.parametrize(
    ("value", "model", "expected"),
    [
        ("", "smollm2:latest", None),
        ("6", "smollm2:latest", 6),
        ("6", "", 6),
        ("smollm2=2", "smollm2:latest", 2),  # a bare name means :latest
        ("smollm2=2", "smollm2:135m", None),
        ("SmolLM2:135m=3", "smollm2:135m", 3),  # names match case-insensitively
        ("8, smollm2:135m=3", "smollm2:135m", 3),  # a named entry wins over the bare number
        ("8, smollm2:135m=3", "qwen:latest", 8),
        ("0", "smollm2:latest", None),
        ("junk, other=x, 5", "smollm2:latest", 5),
    ],
)
def test_num_parallel_override(
    monkeypatch: pytest.MonkeyPatch, value: str, model: str, expected: int | None
) -> None:
    monkeypatch.setenv("LLAMITA_NUM_PARALLEL", value)
    assert config.num_parallel_override(model) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "f16"), ("q8_0", "q8_0"), ("Q4_0", "q4_0"), ("'q8_0'", "q8_0"), ("f16", "f16"), ("q5_1", "f16")],
)
def test_kv_cache_type(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", value)
    assert config.kv_cache_type() == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", None), ("auto", None), ("AUTO", None), ("1", True), ("true", True), ("0", False), ("false", False)],
)
def test_kv_unified(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool | None) -> None:
    monkeypatch.setenv("LLAMITA_KV_UNIFIED", value)
    assert config.kv_unified() is expected


def test_an_invalid_kv_unified_keeps_the_automatic_choice(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LLAMITA_KV_UNIFIED", "sometimes")
    assert config.kv_unified() is None
    assert "LLAMITA_KV_UNIFIED" in caplog.text
