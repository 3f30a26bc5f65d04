"""``logprobs`` / ``top_logprobs`` on generate and chat, checked against bare llama-cpp-python.

Why a cross-check: a log-softmax over the wrong row of logits (another sequence in the batch, or
the prompt's last token instead of the sampled one) still looks plausible; comparing with the
same model's logits computed by llama-cpp-python on its own does not.
"""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import numpy as np
import ollama
import openai
import pytest

pytestmark = pytest.mark.model

MODEL = "smollm2:135m"
# No repeat penalty: with plain greedy sampling the chosen token is the raw logits' argmax.
PLAIN_GREEDY = {"temperature": 0, "repeat_penalty": 1.0, "num_predict": 6}


def _check_entry(entry: dict, top_n: int) -> None:
    assert entry["logprob"] <= 0 and bytes(entry["bytes"]).decode("utf-8", "replace") == entry["token"]
    top = entry.get("top_logprobs", [])
    assert len(top) == top_n
    values = [t["logprob"] for t in top]
    assert values == sorted(values, reverse=True)
    assert sum(math.exp(v) for v in values) <= 1 + 1e-6
    if top_n:
        assert top[0]["token"] == entry["token"] and top[0]["logprob"] == pytest.approx(entry["logprob"])


def test_generate_logprobs_match_bare_llama_cpp(server, smollm2_gguf: Path) -> None:
    body = {
        "model": MODEL,
        "prompt": "def add(a, b):\n    return",
        "stream": False,
        "logprobs": True,
        "top_logprobs": 5,
        "options": PLAIN_GREEDY,
    }
    reply = httpx.post(server.url + "/api/generate", json=body, timeout=120).json()
    entries = reply["logprobs"]
    assert len(entries) == reply["eval_count"]
    for entry in entries:
        _check_entry(entry, 5)
    assert "".join(e["token"] for e in entries) == reply["response"]

    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(smollm2_gguf), n_ctx=256, logits_all=True, verbose=False)
    try:
        tokens = reply["context"]
        prompt_len = len(tokens) - len(entries)
        llm.eval(tokens[:-1])
        for i, entry in enumerate(entries):
            logits = np.asarray(llm.scores[prompt_len - 1 + i], dtype=np.float64)
            expected = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
            # A 4-bit model on a CPU gives logits that move by ~0.1 with the batch shape (bare
            # llama-cpp-python disagrees with itself that much between n_batch 1 and 512); a wrong
            # row of logits is off by whole units.
            assert entry["logprob"] == pytest.approx(expected[tokens[prompt_len + i]], abs=0.3)
            ours = {bytes(t["bytes"]) for t in entry["top_logprobs"]}
            theirs = {llm.detokenize([int(t)]) for t in np.argsort(-expected)[:5]}
            assert len(ours & theirs) >= 3, (ours, theirs)
    finally:
        llm.close()


def test_streamed_chunks_carry_their_own_tokens(server) -> None:
    client = ollama.Client(host=server.url)
    try:
        parts = list(
            client.generate(model=MODEL, prompt="Say hi", options=PLAIN_GREEDY, logprobs=True, stream=True)
        )
    finally:
        client.close()
    text_parts = [p for p in parts if p.response]
    assert text_parts and all(p.logprobs for p in text_parts)
    for part in text_parts:
        assert "".join(entry.token for entry in part.logprobs) == part.response
        assert all(not entry.top_logprobs for entry in part.logprobs)


def test_chat_logprobs_through_the_official_client(server) -> None:
    client = ollama.Client(host=server.url)
    try:
        messages = [{"role": "user", "content": "hello"}]
        reply = client.chat(
            model=MODEL, messages=messages, options=PLAIN_GREEDY, logprobs=True, top_logprobs=2
        )
        plain = client.chat(model=MODEL, messages=messages, options=PLAIN_GREEDY)
    finally:
        client.close()
    assert reply.logprobs and "".join(e.token for e in reply.logprobs) == reply.message.content
    assert all(len(e.top_logprobs) == 2 for e in reply.logprobs)
    assert plain.message.content == reply.message.content and not plain.logprobs


def test_openai_chat_logprobs(server) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=4,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    content = reply.choices[0].logprobs.content
    assert content and "".join(c.token for c in content) == reply.choices[0].message.content
    assert all(len(c.top_logprobs) == 3 and c.logprob <= 0 for c in content)
