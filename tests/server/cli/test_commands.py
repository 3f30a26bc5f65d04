"""The CLI as a user runs it: a subprocess talking HTTP to a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model


def llamita(server_url: str | None, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_HOST": server_url or "127.0.0.1:9"}
    return subprocess.run(
        [sys.executable, "-m", "llamita.server.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_list_table(server) -> None:
    out = llamita(server.url, "list")
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()
    assert re.fullmatch(r"NAME\s{4,}ID\s{4,}SIZE\s{4,}MODIFIED", header)
    assert re.fullmatch(
        r"smollm2:135m\s{4}[0-9a-f]{12}\s{4}98 MB\s{4}(Less than a second|\d+ seconds) ago", row
    )


def test_list_prefix_filter(server) -> None:
    assert len(llamita(server.url, "ls", "SMOL").stdout.splitlines()) == 2
    assert len(llamita(server.url, "ls", "other").stdout.splitlines()) == 1


def test_show_sections_and_flags(server) -> None:
    out = llamita(server.url, "show", "smollm2:135m")
    assert out.returncode == 0, out.stderr
    assert "  Model\n    architecture" in out.stdout
    assert "134.52M" in out.stdout and "Q4_1" in out.stdout and "8192" in out.stdout
    assert "  Capabilities\n    completion" in out.stdout
    template = llamita(server.url, "show", "smollm2:135m", "--template").stdout
    assert "<|im_start|>" in template
    assert llamita(server.url, "show", "smollm2:135m", "--modelfile").stdout.startswith(
        "# Modelfile generated"
    )


def test_create_from_modelfile_with_gguf_path(server, tmp_path: Path, smollm2_gguf: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "smol.gguf").symlink_to(smollm2_gguf)
    (tmp_path / "Modelfile").write_text(
        'FROM ./weights/smol.gguf\nPARAMETER temperature 0.3\nPARAMETER stop "<|im_end|>"\n'
        'SYSTEM """You review code.\nBe concise."""\nTEMPLATE "{{ .System }} {{ .Prompt }}"\n'
    )
    out = llamita(server.url, "create", "reviewer", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "parsing GGUF" and lines[-2:] == ["writing manifest", "success"]
    show = llamita(server.url, "show", "reviewer", "--system").stdout
    assert show == "You review code.\nBe concise.\n"
    params = llamita(server.url, "show", "reviewer", "--parameters").stdout
    assert 'stop                           "<|im_end|>"' in params
    assert "temperature                    0.3" in params


def test_create_errors_are_clear(server, tmp_path: Path) -> None:
    (tmp_path / "Modelfile").write_text("FROM smollm2:135m\nPARAMETER nope 1\n")
    out = llamita(server.url, "create", "x", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == "Error: unknown parameter 'nope'"
    (tmp_path / "Modelfile").write_text("FROM ./missing.gguf\n")
    out = llamita(server.url, "create", "x", cwd=tmp_path)
    assert out.returncode == 1 and "missing.gguf" in out.stderr
    out = llamita(server.url, "create", "x", "-f", str(tmp_path / "nofile"))
    assert out.returncode == 1 and "no such file" in out.stderr


def test_cp_rm(server) -> None:
    assert llamita(server.url, "cp", "smollm2:135m", "mine").stdout == "copied 'smollm2:135m' to 'mine'\n"
    assert llamita(server.url, "rm", "mine").stdout == "deleted 'mine'\n"
    out = llamita(server.url, "rm", "mine")
    assert out.returncode == 1 and "model 'mine' not found" in out.stderr


def test_no_server_message() -> None:
    out = llamita(None, "list")
    assert out.returncode == 1
    assert "could not connect to a llamita server" in out.stderr
    assert "llamita serve" in out.stderr
