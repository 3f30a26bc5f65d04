"""Model families and runner health through the real server.

Tiny generated GGUFs (``tests/ggufgen.py``) stand in for the families SmolLM2 is not: a
recurrent Mamba, a hybrid LFM2 (per-layer ``head_count_kv``), and CLS/LAST-pooled embedding
models.  Reference vectors come from llama-cpp-python's high-level ``Llama`` (tests only).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving import free_port, serve_cli

from ggufgen import write_tiny_gguf, write_tiny_lfm2_gguf, write_tiny_mamba_gguf
from llamita.server.model.create import import_gguf
from llamita.server.store.blobs import Store

pytestmark = pytest.mark.model

TIMEOUT = 300


def words(n: int, seed: int = 0) -> str:
    """About 4n tokens of the tiny vocabulary (it has few merges)."""
    vocab = ["def", "return", "class", "hello", "world", "the", "and", "for", "print", "self"]
    return " ".join(vocab[(i * 7 + seed) % len(vocab)] for i in range(n))


def generate(url: str, model: str, prompt: str, **extra: Any) -> dict[str, Any]:
    body = {
        "model": model,
        "prompt": prompt,
        "raw": True,
        "stream": False,
        "options": {"temperature": 0, "num_predict": 16},
        **extra,
    }
    r = httpx.post(url + "/api/generate", json=body, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["done"] is True
    return out


def fresh(url: str, model: str, prompt: str, **extra: Any) -> dict[str, Any]:
    """The answer on a freshly loaded model: unload it first (empty prompt, keep_alive 0)."""
    r = httpx.post(url + "/api/generate", json={"model": model, "keep_alive": 0}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return generate(url, model, prompt, **extra)


def ps(url: str) -> list[dict[str, Any]]:
    r = httpx.get(url + "/api/ps", timeout=TIMEOUT)
    assert r.status_code == 200
    return r.json()["models"]


def test_recurrent_model_never_continues_from_another_requests_state(empty_server, tmp_path: Path) -> None:
    """Two prompts share a 60-token prefix and then diverge for ~200 tokens.  A state copied
    from the other sequence (llama.cpp's recurrent seq_cp copies it whole, ignoring the range)
    made the second answer continue from the first prompt's end."""
    import_gguf(empty_server.store, "mamba", write_tiny_mamba_gguf(tmp_path / "mamba.gguf"))
    url, prefix = empty_server.url, words(15)
    a, b = prefix + " " + words(50, 1), prefix + " " + words(50, 2)
    a_alone = fresh(url, "mamba", a)["response"]
    b_alone = fresh(url, "mamba", b)["response"]
    assert a_alone and b_alone
    assert generate(url, "mamba", a)["response"] == a_alone
    assert generate(url, "mamba", b)["response"] == b_alone
    # A state that is all a prefix of the next prompt is still reused, whole.
    first = generate(url, "mamba", b, raw=False)
    more = {"raw": False, "context": first["context"]}
    follow = generate(url, "mamba", " " + words(5, 3), **more)
    assert follow["prompt_cache_tokens"] >= len(first["context"]) - 1
    assert fresh(url, "mamba", " " + words(5, 3), **more)["response"] == follow["response"]
    [loaded] = ps(url)
    assert loaded["healthy"] is True


def test_hybrid_model_with_per_layer_head_counts_loads_and_generates(empty_server, tmp_path: Path) -> None:
    """LFM2 writes head_count_kv as [0, 2]: the memory estimate raised TypeError (a 500)."""
    import_gguf(empty_server.store, "lfm2", write_tiny_lfm2_gguf(tmp_path / "lfm2.gguf"))
    url = empty_server.url
    prefix = words(15)
    b_alone = fresh(url, "lfm2", prefix + " " + words(50, 2))
    assert b_alone["eval_count"] == 16
    generate(url, "lfm2", prefix + " " + words(50, 1))
    assert generate(url, "lfm2", prefix + " " + words(50, 2))["response"] == b_alone["response"]
    [loaded] = ps(url)
    assert loaded["name"] == "lfm2:latest" and loaded["size"] > 0


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@pytest.mark.parametrize(
    ("pooling", "causal"),
    [("cls", False), ("last", True)],
    ids=["cls-bert-like", "last-decoder"],
)
def test_embeddings_use_the_models_pooling(empty_server, tmp_path: Path, pooling: str, causal: bool) -> None:
    """A CLS or LAST model's vectors equal llama.cpp's with the model's default pooling (they
    were always MEAN-pooled).  Inputs of different lengths share one request."""
    import llama_cpp

    path = write_tiny_gguf(tmp_path / f"{pooling}.gguf", pooling=pooling, causal=causal, seed=3)
    import_gguf(empty_server.store, "embedder", path)
    texts = [words(3), words(40, 1), words(90, 2), "hello"]
    r = httpx.post(
        empty_server.url + "/api/embed", json={"model": "embedder", "input": texts}, timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    got = r.json()["embeddings"]
    reference = llama_cpp.Llama(str(path), embedding=True, n_ctx=512, verbose=False)
    try:
        assert reference.pooling_type() == {"cls": 2, "last": 3}[pooling]
        want = [reference.embed(text, normalize=True) for text in texts]
        mean = llama_cpp.Llama(
            str(path),
            embedding=True,
            n_ctx=512,
            verbose=False,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        )
        mean_vectors = [mean.embed(text, normalize=True) for text in texts]
        mean.close()
    finally:
        reference.close()
    assert [len(v) for v in got] == [64] * len(texts)  # n_embd_out
    for g, w, m in zip(got, want, mean_vectors, strict=True):
        assert cosine(g, w) > 0.9999
        assert cosine(m, w) < 0.99  # the test can tell the poolings apart


def metric(url: str, name: str, labels: dict[str, str]) -> float | None:
    r = httpx.get(url + "/metrics", timeout=TIMEOUT)
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def kill(engine: Any, url: str, model: str) -> None:
    """Fail the engine through its real path: an exception out of a step (once), on a request."""
    step = engine.step

    def broken_step() -> None:
        engine.step = step
        raise RuntimeError("injected fault")

    engine.step = broken_step
    body = {"model": model, "prompt": "Hello", "stream": False, "options": {"num_predict": 2}}
    httpx.post(url + "/api/generate", json=body, timeout=TIMEOUT)  # fails, or is served after
    if not isinstance(getattr(type(engine), "healthy", None), property):
        # An engine without a health flag (before the engine branch) survives a failed step;
        # record what the engine records when its thread dies (BRIEF: ``healthy``/``failure``).
        engine.healthy, engine.failure = False, "the model runner failed: injected fault"


def test_an_unhealthy_engine_is_reloaded_on_the_next_request(server) -> None:
    """An engine whose thread died is shown in /api/ps and /metrics and replaced, not reused."""
    model, url = "smollm2:135m", server.url
    generate(url, model, "Hello", options={"temperature": 0, "num_predict": 2})
    runners = server.app.state.runners
    [runner] = runners.loaded.values()
    old = runner.engine
    kill(old, url, model)
    [shown] = ps(url)
    assert shown["healthy"] is False and "injected fault" in shown["failure"]
    assert metric(url, "llamita_model_healthy", {"model": model}) == 0
    out = generate(url, model, "Hello", options={"temperature": 0, "num_predict": 2})
    assert out["eval_count"] == 2
    [replaced] = runners.loaded.values()
    assert replaced.engine is not old and old.closed  # the failed one was closed
    [shown] = ps(url)
    assert shown["healthy"] is True and "failure" not in shown
    assert metric(url, "llamita_model_healthy", {"model": model}) == 1


@pytest.mark.parametrize("num_batch", [1, 2_000_000])
def test_extreme_num_batch_is_clamped_not_fatal(store: Store, tmp_path: Path, num_batch: int) -> None:
    """num_batch 1 made llama.cpp abort the whole process (GGML_ASSERT); 2,000,000 allocated
    ~100 MB of batch arrays.  A subprocess server, so a regression cannot take pytest down."""
    import_gguf(store, "tiny", write_tiny_gguf(tmp_path / "tiny.gguf"))
    port = free_port()
    with serve_cli({"OLLAMA_MODELS": str(store.root)}, port, tmp_path / "serve.log") as proc:
        url = f"http://127.0.0.1:{port}"
        options = {"temperature": 0, "num_predict": 8, "num_batch": num_batch}
        out = generate(url, "tiny", words(30), options=options)
        assert out["eval_count"] == 8
        second = generate(url, "tiny", words(30, 1), options=options)  # the same runner, reused
        assert second["eval_count"] == 8
        assert [m["healthy"] for m in ps(url)] == [True]
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
