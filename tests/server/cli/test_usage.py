"""``llamita usage``: the tables from a canned answer, and end to end against a real server."""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import pytest

from llamita.server.cli import usage as usagemod
from llamita.server.cli.commands import CommandError

from .test_run import MODEL, llamita

ANSWER = {
    "since": "2026-12-03T08:00:00Z",
    "totals": [
        {
            "key": "alice",
            "model": MODEL,
            "requests": 3,
            "prompt_tokens": 120,
            "cached_tokens": 40,
            "generated_tokens": 30,
            "engine_seconds": 1.234,
        }
    ],
    "days": [
        {
            "day": day,
            "key": "alice",
            "model": MODEL,
            "requests": 2,
            "prompt_tokens": 100,
            "cached_tokens": 10,
            "generated_tokens": 20,
            "engine_seconds": 0.5,
        }
        for day in ("2026-12-02", "2026-12-03")
    ],
}


def test_the_tables_sum_the_days_per_key_and_model() -> None:
    assert usagemod.render(ANSWER, 2).splitlines() == [
        "LAST 2 DAYS (UTC)",
        "KEY      MODEL           REQUESTS    PROMPT    CACHED    GENERATED    ENGINE",
        "alice    smollm2:135m    4           200       20        40           1.00s",
        "",
        "SINCE START (2026-12-03T08:00:00Z)",
        "KEY      MODEL           REQUESTS    PROMPT    CACHED    GENERATED    ENGINE",
        "alice    smollm2:135m    3           120       40        30           1.23s",
    ]


class FakeClient:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def usage(self, **params: str | int) -> dict[str, Any]:
        self.params = params
        return {"since": "x", "totals": [], "days": []}


def test_the_filters_go_to_the_api(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    args = argparse.Namespace(days=7, key="bob", model=MODEL)
    assert usagemod.usage(client, args) == 0
    assert client.params == {"days": 7, "key": "bob", "model": MODEL}
    assert capsys.readouterr().out.startswith("LAST 7 DAYS (UTC)\nKEY")
    with pytest.raises(CommandError, match="--days must be at least 1"):
        usagemod.usage(client, argparse.Namespace(days=0, key=None, model=None))


@pytest.mark.model
def test_usage_end_to_end(server: Any) -> None:
    body = {"model": MODEL, "prompt": "Hi", "options": {"num_predict": 3, "temperature": 0}, "stream": False}
    reply = httpx.post(server.url + "/api/generate", json=body, timeout=120).json()
    out = llamita(server.url, "usage", "--days", "2")  # today and yesterday: midnight may pass
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "LAST 2 DAYS (UTC)" and lines[1].split() == usagemod.HEADER
    row = lines[2].split()  # an open server: the key is "-"
    assert row[:3] == ["-", MODEL, "1"]
    assert row[3] == str(reply.get("prompt_eval_count", 0)) and row[5] == str(reply.get("eval_count", 0))
    assert any(line.startswith("SINCE START (") for line in lines)
    bad = llamita(server.url, "usage", "--days", "0")
    assert bad.returncode == 1 and "--days must be at least 1" in bad.stderr
