"""Tests for llamita.server.model.modelfile_plan: a Modelfile → Ollama's CreateRequest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llamita.server.model.modelfile import ModelfileError, parse
from llamita.server.model.modelfile_plan import CreatePlan, to_create_request

GGUF = b"GGUF" + (3).to_bytes(4, "little") + bytes(64)


def _plan(text: str, base: Path) -> CreatePlan:
    return to_create_request(parse(text), base)


def _write(path: Path, data: bytes = GGUF) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_create_from_model_name(tmp_path: Path) -> None:
    plan = _plan("FROM llama3.2:1b\nSYSTEM be brief\nTEMPLATE {{ .Prompt }}", tmp_path)
    assert plan.request == {"from": "llama3.2:1b", "template": "{{ .Prompt }}", "system": "be brief"}
    assert plan.files == plan.adapters == plan.draft_files == {}


@pytest.mark.parametrize("name", ["sha256:" + "ab" * 32, "hf.co/org/repo:Q4_K_M", "registry.io/ns/model"])
def test_create_from_reference_kept_as_name(tmp_path: Path, name: str) -> None:
    assert _plan(f"FROM {name}", tmp_path).request == {"from": name}


@pytest.mark.parametrize("form", ["./model.gguf", "model.gguf", "sub/../model.gguf", "{abs}"])
def test_create_from_gguf_file(tmp_path: Path, form: str) -> None:
    model = _write(tmp_path / "model.gguf")
    plan = _plan("FROM " + form.format(abs=model), tmp_path)
    assert plan.request == {}
    assert plan.files == {"model.gguf": model}


def test_create_relative_to_base_dir_not_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _write(tmp_path / "dir" / "m.gguf")
    monkeypatch.chdir(tmp_path)
    assert _plan("FROM ./m.gguf", Path("dir")).files == {"m.gguf": model}


def test_create_home_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _write(tmp_path / "models" / "m.gguf")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _plan("FROM ~/models/m.gguf", Path("/elsewhere")).files == {"m.gguf": model}


def test_create_unknown_user(tmp_path: Path) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan("FROM ~no_such_user_llamita/m.gguf", tmp_path)
    assert (
        str(info.value)
        == "failed to find user 'no_such_user_llamita': user: unknown user no_such_user_llamita"
    )


@pytest.mark.parametrize("arg", ["./missing.gguf", "missing.GGUF", "/nowhere/m.gguf", "../up/m"])
def test_create_missing_path_is_an_error(tmp_path: Path, arg: str) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan(f"FROM {arg}", tmp_path)
    expected = os.path.abspath(os.path.join(tmp_path, arg))
    assert str(info.value) == f"stat {expected}: no such file or directory"


def test_create_from_directory(tmp_path: Path) -> None:
    model_dir = tmp_path / "qwen"
    weights = _write(model_dir / "qwen.gguf")
    config = _write(model_dir / "config.json", b'{"a": 1}')
    nested = _write(model_dir / "tokenizer" / "config.json", b"{}")
    template = _write(model_dir / "chat_template.jinja", b"{{ messages }}")
    tokenizer = _write(model_dir / "tokenizer.model", b"\x00\x01binary")
    _write(model_dir / "README.md", b"ignored")
    plan = _plan("FROM ./qwen", tmp_path)
    assert plan.files == {
        "qwen.gguf": weights,
        "config.json": config,
        "tokenizer/config.json": nested,
        "chat_template.jinja": template,
        "tokenizer.model": tokenizer,
    }
    assert "from" not in plan.request


def test_create_directory_prefers_safetensors(tmp_path: Path) -> None:
    shard = _write(tmp_path / "model-00001-of-00001.safetensors", b"{}")
    nested = _write(tmp_path / "sub" / "model.safetensors", b"x")
    _write(tmp_path / "other.gguf")
    plan = _plan("FROM .", tmp_path)
    assert plan.files == {"model-00001-of-00001.safetensors": shard, "sub/model.safetensors": nested}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param({"notes.txt": b"hi"}, "no Modelfile or safetensors files found", id="no-weights"),
        pytest.param({"fake.gguf": b"just text"}, "no Modelfile or safetensors files found", id="text-gguf"),
        pytest.param(
            {"m.gguf": GGUF, "config.json": b"\x00\x01"},
            "invalid content type: expected application/octet-stream for {dir}/config.json",
            id="binary-json",
        ),
    ],
)
def test_create_directory_errors(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    for name, data in files.items():
        _write(tmp_path / "m" / name, data)
    with pytest.raises(ModelfileError) as info:
        _plan("FROM m", tmp_path)
    assert str(info.value) == message.format(dir=tmp_path / "m")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param("outside/x.gguf", "insecure path: ../outside/x.gguf", id="outside"),
        pytest.param(
            ".cache/hub/x.gguf",
            "insecure path: ../.cache/hub/x.gguf\n\n"
            "Use --local-dir <dir> when downloading model to disable caching",
            id="hf-cache",
        ),
    ],
)
def test_create_directory_symlink_escape(tmp_path: Path, target: str, message: str) -> None:
    real = _write(tmp_path / target)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.gguf").symlink_to(real)
    with pytest.raises(ModelfileError) as info:
        _plan("FROM ./m", tmp_path)
    assert str(info.value) == message


def test_create_single_file_symlink_keeps_link_name(tmp_path: Path) -> None:
    real = _write(tmp_path / "blobs" / "sha256-abc")
    (tmp_path / "nice.gguf").symlink_to(real)
    assert _plan("FROM nice.gguf", tmp_path).files == {"nice.gguf": tmp_path / "nice.gguf"}


def test_create_several_froms_merge_files(tmp_path: Path) -> None:
    first = _write(tmp_path / "a" / "model.gguf")
    second = _write(tmp_path / "b" / "mmproj.gguf")
    plan = _plan("FROM ./a/model.gguf\nFROM ./b/mmproj.gguf\nFROM base:latest", tmp_path)
    assert plan.files == {"a/model.gguf": first, "b/mmproj.gguf": second}
    assert plan.request == {"from": "base:latest"}


def test_create_adapter_and_draft(tmp_path: Path) -> None:
    _write(tmp_path / "first.gguf")
    lora = _write(tmp_path / "lora.gguf")
    draft = _write(tmp_path / "draft.gguf")
    plan = _plan("FROM base\nADAPTER first.gguf\nADAPTER lora.gguf\nDRAFT ./draft.gguf", tmp_path)
    assert plan.adapters == {"lora.gguf": lora}  # a later ADAPTER replaces the earlier one
    assert plan.draft_files == {"draft.gguf": draft}
    assert plan.request == {"from": "base"}


@pytest.mark.parametrize("keyword", ["ADAPTER", "DRAFT"])
def test_create_adapter_or_draft_must_exist(tmp_path: Path, keyword: str) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan(f"FROM base\n{keyword} missing-name", tmp_path)
    assert str(info.value) == f"stat {tmp_path / 'missing-name'}: no such file or directory"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("FROM ./m.gguf\nDRAFT ./m.gguf", id="draft-after"),
        pytest.param("DRAFT m.gguf\nFROM ./m.gguf", id="draft-before"),
        pytest.param("FROM ./m.gguf\nDRAFT ./link.gguf", id="via-symlink"),
    ],
)
def test_create_draft_must_differ_from_model(tmp_path: Path, text: str) -> None:
    _write(tmp_path / "m.gguf")
    (tmp_path / "link.gguf").symlink_to(tmp_path / "m.gguf")
    with pytest.raises(ModelfileError, match=r"^DRAFT must not reference the same local path as FROM: /"):
        _plan(text, tmp_path)


def test_create_parameters_license_messages(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = (
        "FROM base\n"
        "PARAMETER temperature 0.5\n"
        "PARAMETER stop <|a|>\n"
        "PARAMETER num_ctx 2048\n"
        "PARAMETER stop <|b|>\n"
        "PARAMETER num_ctx 4096\n"
        "PARAMETER mirostat 2\n"
        "PARAMETER use_mmap false\n"
        "LICENSE MIT\n"
        'LICENSE """Apache\n2.0"""\n'
        "MESSAGE user hi: there\n"
        "MESSAGE assistant hello\n"
        "RENDERER qwen3-coder\n"
        "PARSER qwen3-coder\n"
        "REQUIRES v0.14.1\n"
    )
    plan = _plan(text, tmp_path)
    assert plan.request == {
        "from": "base",
        "license": ["MIT", "Apache\n2.0"],
        "parameters": {"temperature": 0.5, "stop": ["<|a|>", "<|b|>"], "num_ctx": 4096, "use_mmap": False},
        "messages": [{"role": "user", "content": "hi: there"}, {"role": "assistant", "content": "hello"}],
        "renderer": "qwen3-coder",
        "parser": "qwen3-coder",
        "requires": "0.14.1",
    }
    assert "parameter mirostat is deprecated" in caplog.text


def test_create_empty_strings_are_omitted(tmp_path: Path) -> None:
    plan = _plan('FROM base\nSYSTEM first\nSYSTEM ""\nTEMPLATE """"""\nLICENSE ""', tmp_path)
    assert plan.request == {"from": "base", "license": [""]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("PARAMETER bogus 1", "unknown parameter 'bogus'", id="unknown"),
        pytest.param("PARAMETER numa true", "unknown parameter 'numa'", id="removed"),
        pytest.param("PARAMETER  stop x", "unknown parameter ''", id="empty-name"),
        pytest.param("PARAMETER num_ctx big", "invalid int value [big]", id="int"),
        pytest.param("PARAMETER top_p high", "invalid float value [high]", id="float"),
        pytest.param("PARAMETER use_mmap yes", "invalid bool value [yes]", id="bool"),
    ],
)
def test_create_parameter_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan(f"FROM base\n{text}", tmp_path)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("version", "sent"),
    [
        ("0.14.0", "0.14.0"),
        ("v0.14.0", "0.14.0"),
        ("1", "1"),
        ("1.2", "1.2"),
        ("1.2.3-rc.1", "1.2.3-rc.1"),
        ("1.2.3-0a.x-y", "1.2.3-0a.x-y"),
        ("1.2.3+build.007", "1.2.3+build.007"),
        ("1.2.3-beta+exp.sha.5114f85", "1.2.3-beta+exp.sha.5114f85"),
    ],
)
def test_create_requires_accepts(tmp_path: Path, version: str, sent: str) -> None:
    assert _plan(f"FROM base\nREQUIRES {version}", tmp_path).request["requires"] == sent


@pytest.mark.parametrize(
    "version",
    [
        "latest",
        "",
        "01.2.3",
        "1.02.3",
        "1.2.3.4",
        "1.2-rc1",
        "1.2.3-",
        "1.2.3-01",
        "1.2.3+",
        "vv1.0.0",
        "V1.0.0",
    ],
)
def test_create_requires_rejects(tmp_path: Path, version: str) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan(f"FROM base\nREQUIRES {version}", tmp_path)
    assert str(info.value) == "requires must be a valid semver (e.g. 0.14.0)"


def test_with_digests_fills_every_map(tmp_path: Path) -> None:
    model = _write(tmp_path / "m.gguf")
    lora = _write(tmp_path / "l.gguf")
    draft = _write(tmp_path / "d.gguf")
    plan = _plan("FROM m.gguf\nADAPTER l.gguf\nDRAFT d.gguf\nSYSTEM s", tmp_path)
    digests = {model: "sha256:" + "1" * 64, lora: "sha256:" + "2" * 64, draft: "sha256:" + "3" * 64}
    assert plan.with_digests(digests) == {
        "system": "s",
        "files": {"m.gguf": digests[model]},
        "adapters": {"l.gguf": digests[lora]},
        "draft_files": {"d.gguf": digests[draft]},
    }
    assert "files" not in plan.request
    assert _plan("FROM base", tmp_path).with_digests({}) == {"from": "base"}
