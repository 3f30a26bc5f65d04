"""bench/servers.py: the command lines and environments the side-by-side benchmarks start servers with."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchkit import bench_module

servers = bench_module("servers")


def test_llama_server_shares_the_whole_context_among_its_slots() -> None:
    argv = servers.llama_server_argv(
        Path("/bin/ls"), Path("/m.gguf"), 8080, ctx=4096, parallel=32, threads=None, ngl=999
    )
    assert argv[:3] == ["/bin/ls", "-m", "/m.gguf"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("-c") + 1] == str(32 * 4096)
    assert argv[argv.index("-np") + 1] == "32"
    assert argv[argv.index("-ngl") + 1] == "999"
    assert "-t" not in argv  # llama-server's own default unless asked


def test_llama_server_on_the_cpu_gets_the_threads_and_no_gpu_layers() -> None:
    argv = servers.llama_server_argv(Path("ls"), Path("m"), 1, ctx=4096, parallel=1, threads=2, ngl=None)
    assert argv[argv.index("-c") + 1] == "4096"
    assert argv[argv.index("-t") + 1] == "2"
    assert "-ngl" not in argv


def test_llamita_gets_its_own_store_port_and_only_the_model_under_test(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    server = servers.llamita(
        "llamita", gguf, tmp_path / "store", {"num_gpu": 999}, {"OLLAMA_NUM_PARALLEL": "32"}
    )
    assert server.env["OLLAMA_HOST"] == f"127.0.0.1:{server.port}"
    assert server.env["OLLAMA_MODELS"] == str(tmp_path / "store")
    assert server.env["LLAMITA_NO_DEFAULT_MODEL"] == "1"
    assert server.env["OLLAMA_NUM_PARALLEL"] == "32"
    assert server.modelfile == f"FROM {gguf.resolve()}\nPARAMETER num_gpu 999\n"
    assert server.target("http://127.0.0.1:9") == "llamita=ollama@http://127.0.0.1:9#bench"


def test_a_missing_llama_server_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLAMA_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit, match="cmake -B build -DLLAMA_CURL=OFF"):
        servers.find_llama_server(None)
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert servers.find_llama_server(None) == binary.resolve()
