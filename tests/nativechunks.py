"""Native ``/api/chat`` and ``/api/generate`` chunks, built for the ``/v1`` translation tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from llamita.server.store.names import Name, parse_name

CREATED_AT = "2024-06-01T12:00:00.123456789Z"
CREATED = 1717243200
PNG = base64.b64encode(b"\x89PNG fake image").decode()
USER_HI = [{"role": "user", "content": "hi"}]
DEFAULT_OPTIONS = {"temperature": 1.0, "top_p": 1.0}


def chat_chunk(content: str = "", *, done: bool = False, **message: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "created_at": CREATED_AT,
        "message": {"role": "assistant", "content": content, **message},
        "done": done,
    }


def chat_done(reason: str = "stop", content: str = "", **message: Any) -> dict[str, Any]:
    chunk = chat_chunk(content, done=True, **message)
    return {**chunk, "done_reason": reason, "prompt_eval_count": 7, "eval_count": 3, "total_duration": 9}


def gen_chunk(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "created_at": CREATED_AT, "response": text, "done": False, **extra}


def gen_done(reason: str = "stop", **extra: Any) -> dict[str, Any]:
    done = {**gen_chunk(""), "done": True, "done_reason": reason, "prompt_eval_count": 4, "eval_count": 2}
    return {**done, **extra}


def native_call(
    name: str, arguments: dict[str, Any], index: int = 0, call_id: str = "call_abc"
) -> dict[str, Any]:
    return {"id": call_id, "function": {"index": index, "name": name, "arguments": arguments}}


EMBEDDINGS = {"model": "e", "embeddings": [[0.5, -0.25], [1.0, 0.0]], "prompt_eval_count": 6}


@dataclass
class FakeManifest:
    name: Name
    modified: float


MANIFESTS = [
    FakeManifest(parse_name("old:1"), 100.7),
    FakeManifest(parse_name("hf.co/someone/coder:q4"), 300.0),
    FakeManifest(parse_name("team/new"), 200.0),
]
