"""``llamita ps`` and ``llamita stop``: formatting, handlers against a fake client, and end to end."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest

from llamita.server.cli import ps as psmod
from llamita.server.cli.commands import CommandError
from llamita.server.client import ResponseError

from .test_run import MODEL, FakeClient, llamita, short_model

NOW = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
GB = 1000**3


@pytest.mark.parametrize(
    ("size", "size_vram", "text"),
    [
        (4 * GB, 4 * GB, "100% GPU"),
        (4 * GB, 0, "100% CPU"),
        (100, 73, "27%/73% CPU/GPU"),
        (1000, 485, "52%/48% CPU/GPU"),
        (1000, 995, "1%/99% CPU/GPU"),
        (1000, 2000, "Unknown"),
        (0, 5, "Unknown"),
        (0, 0, "100% CPU"),
    ],
    ids=["gpu", "cpu", "split", "split-rounds-half-up", "mostly-gpu", "vram-over-size", "no-size", "empty"],
)
def test_processor(size: int, size_vram: int, text: str) -> None:
    assert psmod.processor(size, size_vram) == text


@pytest.mark.parametrize(
    ("expires_at", "text"),
    [
        ("2025-06-01T12:04:30Z", "4 minutes from now"),
        ("2025-06-01T12:00:30.123456789Z", "30 seconds from now"),
        ("2025-06-01T13:00:00+00:00", "About an hour from now"),
        ("2318-04-11T12:00:00.000000001-07:00", "Forever"),
        ("2025-06-01T11:59:59Z", "Stopping..."),
        ("0001-01-01T00:00:00Z", "Stopping..."),
        (None, "Stopping..."),
    ],
    ids=["minutes", "seconds-nanos", "hour", "forever", "expired", "zero-time", "missing"],
)
def test_until(expires_at: str | None, text: str) -> None:
    assert psmod.until(expires_at, NOW) == text


def running(name: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "size": 190_000_000,
        "size_vram": 0,
        "digest": "0123456789abcdef" * 4,
        "details": {"family": "llama"},
        "expires_at": "2025-06-01T12:05:00Z",
        "context_length": 4096,
        **extra,
    }


def test_rows_and_prefix_filter() -> None:
    models = [running(), running("qwen3:8b", size_vram=190_000_000, context_length=8192)]
    assert psmod.rows(models, now=NOW) == [
        [MODEL, "0123456789ab", "190 MB", "100% CPU", "4096", "5 minutes from now"],
        ["qwen3:8b", "0123456789ab", "190 MB", "100% GPU", "8192", "5 minutes from now"],
    ]
    assert [r[0] for r in psmod.rows(models, "qwen", now=NOW)] == ["qwen3:8b"]
    assert psmod.rows(models, "QWEN", now=NOW) == []  # Ollama's prefix match is case-sensitive


class PsFake(FakeClient):
    def __init__(self, loaded: list[dict[str, Any]]) -> None:
        super().__init__()
        self.loaded = loaded

    def ps(self) -> list[dict[str, Any]]:
        return self.loaded


def test_ps_prints_the_table(capsys: pytest.CaptureFixture) -> None:
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4, seconds=30)).isoformat()
    assert psmod.ps(PsFake([running(expires_at=far)]), argparse.Namespace(prefix="")) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"NAME\s{4,}ID\s{4,}SIZE\s{4,}PROCESSOR\s{4,}CONTEXT\s{4,}UNTIL", header)
    assert re.fullmatch(
        r"smollm2:135m    0123456789ab    190 MB    100% CPU     4096       4 minutes from now", row
    )


def test_ps_with_nothing_loaded_prints_only_the_header(capsys: pytest.CaptureFixture) -> None:
    psmod.ps(PsFake([]), argparse.Namespace(prefix=""))
    assert capsys.readouterr().out == "NAME    ID    SIZE    PROCESSOR    CONTEXT    UNTIL\n"


def test_stop_unloads_with_keep_alive_zero() -> None:
    client = FakeClient()
    assert psmod.stop(client, argparse.Namespace(model=MODEL)) == 0
    assert client.calls == [("show", MODEL), ("generate", {"model": MODEL, "prompt": "", "keep_alive": "0s"})]


def test_stop_unknown_model() -> None:
    with pytest.raises(CommandError) as e:
        psmod.stop(FakeClient(), argparse.Namespace(model="ghost"))
    assert str(e.value) == 'couldn\'t find model "ghost" to stop'


def test_stop_other_errors_propagate() -> None:
    class Broken(FakeClient):
        def show(self, model: str, verbose: bool = False) -> dict[str, Any]:
            raise ResponseError("invalid model name", 400)

    with pytest.raises(ResponseError, match="invalid model name"):
        psmod.stop(Broken(), argparse.Namespace(model="a/b/c/d"))


# ----------------------------------------------------------------------------- end to end (real server)


def _ps_rows(url: str) -> list[str]:
    out = llamita(url, "ps")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert re.fullmatch(r"NAME\s{4,}ID\s{4,}SIZE\s{4,}PROCESSOR\s{4,}CONTEXT\s{4,}UNTIL", lines[0])
    return lines[1:]


@pytest.mark.model
def test_e2e_ps_empty(server) -> None:
    assert _ps_rows(server.url) == []


@pytest.mark.model
def test_e2e_run_ps_stop(server, tmp_path: Path) -> None:
    model = short_model(server.url, tmp_path)
    out = llamita(server.url, "run", model, "--keepalive", "10m", "Hi")
    assert out.returncode == 0, out.stderr
    (row,) = _ps_rows(server.url)
    assert re.fullmatch(
        r"short:latest\s{4}[0-9a-f]{12}\s{4}\d+(\.\d)? [MG]B\s{4}"
        r"(100% CPU|100% GPU|\d+%/\d+% CPU/GPU)\s{4,}\d+\s{4,}(9|10) minutes from now",
        row,
    ), row

    out = llamita(server.url, "stop", model)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    deadline = time.monotonic() + 30
    rows = _ps_rows(server.url)
    while rows and time.monotonic() < deadline:
        assert all(r.endswith("Stopping...") for r in rows), rows
        time.sleep(0.2)
        rows = _ps_rows(server.url)
    assert rows == []


@pytest.mark.model
def test_e2e_keepalive_forever_shows_forever(server, tmp_path: Path) -> None:
    out = llamita(server.url, "run", short_model(server.url, tmp_path), "--keepalive=-1m", "Hi")
    assert out.returncode == 0, out.stderr
    (row,) = _ps_rows(server.url)
    assert row.endswith("Forever")


@pytest.mark.model
def test_e2e_stop_missing_model(server) -> None:
    out = llamita(server.url, "stop", "ghost")
    assert out.returncode == 1
    assert out.stderr == 'Error: couldn\'t find model "ghost" to stop\n'
