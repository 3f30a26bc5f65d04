from __future__ import annotations

import pytest

from llamita.server.store.names import (
    InvalidName,
    ModelRequired,
    Name,
    parse_model_ref,
    parse_name,
    require_name,
)

VALID = [
    ("bare", "llama3", "registry.ollama.ai/library/llama3:latest", "llama3:latest"),
    ("tag", "llama3:8b", "registry.ollama.ai/library/llama3:8b", "llama3:8b"),
    ("namespace", "team/coder:1.0", "registry.ollama.ai/team/coder:1.0", "team/coder:1.0"),
    (
        "host-port",
        "localhost:5000/team/coder:v1",
        "localhost:5000/team/coder:v1",
        "localhost:5000/team/coder:v1",
    ),
    (
        "host-no-tag",
        "localhost:5000/team/coder",
        "localhost:5000/team/coder:latest",
        "localhost:5000/team/coder:latest",
    ),
    ("hf", "hf.co/user/repo:Q4_K_M", "hf.co/user/repo:Q4_K_M", "hf.co/user/repo:Q4_K_M"),
    (
        "dots-in-model",
        "qwen2.5-coder:1.5b",
        "registry.ollama.ai/library/qwen2.5-coder:1.5b",
        "qwen2.5-coder:1.5b",
    ),
    ("underscore-start", "_x:_y", "registry.ollama.ai/library/_x:_y", "_x:_y"),
    ("scheme", "http://localhost:5000/a/b:c", "localhost:5000/a/b:c", "localhost:5000/a/b:c"),
    ("default-host-case", "Registry.Ollama.AI/Library/M:T", "Registry.Ollama.AI/Library/M:T", "M:T"),
]


@pytest.mark.parametrize(("text", "full", "short"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_names(text: str, full: str, short: str) -> None:
    name = require_name(text)
    assert str(name) == full
    assert name.shortest == short
    assert parse_name(str(name)).parts == name.parts  # round trip


INVALID = [
    ("empty", ""),
    ("dotdot", "../x"),
    ("slash-lead", "/x"),
    ("empty-tag", "x:"),
    ("empty-model", ":tag"),
    ("double-slash", "a//b"),
    ("five-parts", "a/b/c/d"),
    ("dot-namespace", "a.b/c"),
    ("digest", "m@sha256:abc"),
    ("space", "my model"),
    ("tag-colon", "a/b:c:d"),
    ("dash-start", "-x"),
    ("long-model", "m" * 81),
    ("long-tag", "m:" + "t" * 81),
    ("unicode", "modèle"),
]


@pytest.mark.parametrize("text", [v[1] for v in INVALID], ids=[v[0] for v in INVALID])
def test_invalid_names(text: str) -> None:
    assert not parse_name(text).is_valid
    with pytest.raises(InvalidName, match="invalid model name"):
        require_name(text)


def test_length_limits_accept_the_maximum() -> None:
    assert require_name("m" * 80 + ":" + "t" * 80).is_valid
    assert require_name("h" * 350 + "/n/m:t").is_valid
    assert not parse_name("h" * 351 + "/n/m:t").is_valid


def test_case_insensitive_key() -> None:
    assert parse_name("Llama3:LATEST").key == parse_name("llama3").key
    assert Name("a", "b", "c", "d").key == ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Ollama's internal/modelref TestParseRef cases that concern a local model.
        ("qwen3:8b:local", "registry.ollama.ai/library/qwen3:8b"),
        ("llama3.2", "registry.ollama.ai/library/llama3.2:latest"),
        ("my-cloud-model", "registry.ollama.ai/library/my-cloud-model:latest"),
        ("smollm2:local", "registry.ollama.ai/library/smollm2:latest"),
        ("smollm2:LOCAL", "registry.ollama.ai/library/smollm2:latest"),
        ("  smollm2:135m  ", "registry.ollama.ai/library/smollm2:135m"),
        ("localhost:5000/team/coder:local", "localhost:5000/team/coder:latest"),
        ("localhost:5000/team/coder", "localhost:5000/team/coder:latest"),
        # No cloud here: ":cloud" stays the tag it is written as.
        ("gpt-oss:cloud", "registry.ollama.ai/library/gpt-oss:cloud"),
    ],
)
def test_model_refs_drop_the_local_suffix(text: str, expected: str) -> None:
    assert str(parse_model_ref(text)) == expected


def test_model_ref_refusals_are_ollamas() -> None:
    with pytest.raises(ModelRequired, match=r"^model is required$"):
        parse_model_ref("   ")
    with pytest.raises(InvalidName, match=r'^use either :local or :cloud, not both: "foo:cloud:local"$'):
        parse_model_ref("foo:cloud:local")
    with pytest.raises(InvalidName, match="not both"):
        parse_model_ref("foo:local:cloud")
    assert not parse_model_ref("a//b:local").is_valid
