"""``llamita run``: the one-shot path and the REPL start (fake client), and end to end (real server)."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llamita.server.cli import __main__ as cli_main
from llamita.server.cli import run as runmod
from llamita.server.cli.commands import CommandError
from llamita.server.client import ResponseError

from .fakes import MODEL, SMOL_INFO, FakeClient, TtyIn, chunks, console, parse

# ----------------------------------------------------------------------------- one-shot (fake client)


def test_one_shot_streams_generate_and_ends_with_blank_line() -> None:
    client, c = FakeClient(), console()
    assert runmod.run(client, parse(MODEL, "hello", "there"), stdin=io.StringIO(""), console=c) == 0
    assert c.out.getvalue() == "Hello there\n\n"
    assert c.err.getvalue() == ""
    assert [name for name, _ in client.calls] == ["show", "generate"]
    assert client.bodies("generate") == [{"model": MODEL, "prompt": "hello there"}]


def test_piped_stdin_is_prepended_to_the_prompt() -> None:
    client = FakeClient()
    runmod.run(client, parse(MODEL, "summarize"), stdin=io.StringIO("line one\n"), console=console())
    assert client.bodies("generate")[0]["prompt"] == "line one\n summarize"


def test_piped_stdin_alone_is_the_prompt() -> None:
    client = FakeClient()
    runmod.run(client, parse(MODEL), stdin=io.StringIO("just stdin"), console=console())
    assert client.bodies("generate")[0]["prompt"] == "just stdin"


def test_no_prompt_and_no_tty_only_loads() -> None:
    client, c = FakeClient(), console()
    runmod.run(client, parse(MODEL), stdin=io.StringIO(""), console=c)
    assert client.bodies("generate") == [{"model": MODEL, "prompt": ""}]
    assert c.out.getvalue() == ""


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--keepalive", "10m"], {"keep_alive": "10m0s"}),
        (["--keepalive=-1s"], {"keep_alive": -1}),
        (["--keepalive", "0"], {"keep_alive": "0s"}),
        (["--format", "json"], {"format": "json"}),
        (["--format", '{"type":"object"}'], {"format": {"type": "object"}}),
        (["--think"], {"think": True}),
        (["--think=false"], {"think": False}),
        (["--think=high"], {"think": "high"}),
    ],
    ids=["keepalive", "keepalive-forever", "keepalive-zero", "json", "schema", "think", "nothink", "level"],
)
def test_flags_reach_the_request(flags: list[str], expected: dict[str, Any]) -> None:
    client = FakeClient()
    runmod.run(client, parse(MODEL, "hi", *flags), stdin=io.StringIO(""), console=console())
    assert client.bodies("generate")[0] == {"model": MODEL, "prompt": "hi", **expected}


def test_think_is_inferred_from_capabilities() -> None:
    thinker = {**SMOL_INFO, "capabilities": ["completion", "thinking"]}
    client = FakeClient({"qwen3": thinker})
    runmod.run(client, parse("qwen3", "hi"), stdin=io.StringIO(""), console=console())
    assert client.bodies("generate")[0]["think"] is True
    client = FakeClient({"qwen3": thinker})
    runmod.run(client, parse("qwen3", "hi", "--think=false"), stdin=io.StringIO(""), console=console())
    assert client.bodies("generate")[0]["think"] is False


def test_bad_keepalive_and_format_fail_before_any_request() -> None:
    client = FakeClient()
    with pytest.raises(CommandError, match=r'time: invalid duration "soon"'):
        runmod.run(
            client, parse(MODEL, "hi", "--keepalive", "soon"), stdin=io.StringIO(""), console=console()
        )
    with pytest.raises(CommandError, match="invalid format"):
        runmod.run(client, parse(MODEL, "hi", "--format", "yaml"), stdin=io.StringIO(""), console=console())
    assert client.calls == []


def test_missing_model_is_pulled_first() -> None:
    client = FakeClient(models={})
    client.pullable = {MODEL: SMOL_INFO}
    assert runmod.run(client, parse(MODEL, "hi", "--insecure"), stdin=io.StringIO(""), console=console()) == 0
    assert [name for name, _ in client.calls] == ["show", "pull", "show", "generate"]
    assert client.calls[1][1] == {"model": MODEL, "insecure": True}


def test_missing_model_that_cannot_be_pulled() -> None:
    client = FakeClient()
    with pytest.raises(ResponseError, match=r"^pull model manifest: file does not exist$"):
        runmod.run(client, parse("nope", "hi"), stdin=io.StringIO(""), console=console())
    assert [name for name, _ in client.calls] == ["show", "pull"]


def test_missing_model_through_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_main, "Client", FakeClient)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli_main.main(["run", "nope", "hi"]) == 1
    assert capsys.readouterr().err == "pulling manifest\nError: pull model manifest: file does not exist\n"


def test_verbose_prints_stats_to_stderr() -> None:
    client, c = FakeClient(), console()
    client.replies.append(chunks("Hi", total_duration=2_000_000_000, eval_count=4, eval_duration=500_000_000))
    runmod.run(client, parse(MODEL, "hi", "--verbose"), stdin=io.StringIO(""), console=c)
    assert c.out.getvalue() == "Hi\n\n"
    assert c.err.getvalue() == (
        "total duration:       2s\neval count:           4 token(s)\n"
        "eval duration:        500ms\neval rate:            8.00 tokens/s\n"
    )


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], "Thinking...\nhmm, let me see\n...done thinking.\n\nYes.\n\n"),
        (["--hidethinking"], "Yes.\n\n"),
    ],
    ids=["shown", "hidden"],
)
def test_thinking_block(flags: list[str], expected: str) -> None:
    client, c = FakeClient(), console()
    client.replies.append(chunks("Yes.", thinking="hmm, let me see"))
    runmod.run(client, parse(MODEL, "q", *flags), stdin=io.StringIO(""), console=c)
    assert c.out.getvalue() == expected


def test_thinking_block_is_grey_on_a_terminal() -> None:
    client, c = FakeClient(), console(tty=True)
    client.replies.append(chunks("Yes.", thinking="hmm\n"))
    runmod.run(client, parse(MODEL, "q", "--nowordwrap"), stdin=io.StringIO(""), console=c)
    grey, bold, reset = "\x1b[38;5;245m", "\x1b[1m", "\x1b[0m"
    assert c.out.getvalue() == (
        f"{grey}{bold}Thinking...\n{reset}{grey}hmm\n{grey}{bold}...done thinking.\n\n{reset}Yes.\n\n"
    )


def test_server_error_mid_stream_propagates() -> None:
    client = FakeClient()
    client.replies.append(ResponseError('"smollm2:135m" does not support thinking', 400))
    with pytest.raises(ResponseError, match="does not support thinking"):
        runmod.run(client, parse(MODEL, "q", "--think"), stdin=io.StringIO(""), console=console())


def test_embedding_model_prints_the_vector() -> None:
    client, c = FakeClient({"embed": {**SMOL_INFO, "capabilities": ["embedding"]}}), console()
    runmod.run(client, parse("embed", "some text", "--keepalive", "1m"), stdin=io.StringIO(""), console=c)
    assert c.out.getvalue() == "[0.5,-0.25,1e-7]\n"
    assert client.bodies("embed") == [{"model": "embed", "input": "some text", "keep_alive": "1m0s"}]
    with pytest.raises(CommandError, match="embedding models require input text"):
        runmod.run(client, parse("embed"), stdin=io.StringIO(""), console=console())


def test_interactive_loads_first_then_chats() -> None:
    info = {
        **SMOL_INFO,
        "messages": [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "A bot."}],
    }
    client, c = FakeClient({MODEL: info}), console(tty=True)
    lines = iter(["hi", "/bye"])
    code = runmod.run(
        client, parse(MODEL, "--keepalive", "1h"), stdin=TtyIn(), console=c, input_fn=lambda _: next(lines)
    )
    assert code == 0
    assert [name for name, _ in client.calls] == ["show", "show", "generate", "chat"]
    assert client.bodies("generate") == [{"model": MODEL, "prompt": "", "keep_alive": "1h0m0s"}]
    assert client.bodies("chat") == [
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "keep_alive": "1h0m0s"}
    ]
    assert c.out.getvalue() == ">>> Who are you?\nA bot.\n\nHello there\n\n"


# ----------------------------------------------------------------------------- end to end (real server)


def llamita(
    url: str, *args: str, stdin: str = "", home: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_HOST": url}
    if home:
        env["HOME"] = home
    return subprocess.run(
        [sys.executable, "-m", "llamita.server.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def short_model(url: str, tmp_path: Path) -> str:
    """smollm2 capped at a few greedy tokens: ``run`` has no option flags, and an uncapped
    135M model can ramble for minutes."""
    (tmp_path / "Modelfile").write_text(f"FROM {MODEL}\nPARAMETER num_predict 12\nPARAMETER temperature 0\n")
    out = llamita(url, "create", "short", "-f", str(tmp_path / "Modelfile"))
    assert out.returncode == 0, out.stderr
    return "short"


@pytest.mark.model
def test_e2e_run_one_shot(server, tmp_path: Path) -> None:
    out = llamita(server.url, "run", short_model(server.url, tmp_path), "Say hello in one word.")
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("\n\n")
    assert out.stdout.strip()
    assert "\x1b[" not in out.stdout  # not a terminal: no wrapping escapes


@pytest.mark.model
def test_e2e_run_piped_stdin_and_verbose(server, tmp_path: Path) -> None:
    out = llamita(server.url, "run", short_model(server.url, tmp_path), "--verbose", stdin="What is 2 + 2?")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert re.search(r"^total duration:       \d", out.stderr, re.M), out.stderr
    assert re.search(r"^eval count:           (12|[1-9]|1[01]) token\(s\)$", out.stderr, re.M)
    assert re.search(r"^eval rate:            \d+\.\d\d tokens/s$", out.stderr, re.M)


@pytest.mark.model
def test_e2e_run_missing_model(server) -> None:
    # Like Ollama, run pulls a model the server lacks; a registry nobody listens on fails clearly.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{s.getsockname()[1]}"
    out = llamita(server.url, "run", f"{host}/library/nope", "hi", "--insecure")
    assert out.returncode == 1
    error = f"pull model manifest: could not connect to registry {host}: connection refused"
    assert out.stderr == f"pulling manifest\nError: {error}\n"
