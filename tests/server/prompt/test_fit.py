"""Chat truncation (``chat_text``): Ollama's result, in O(log M) renders of about the kept size."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llamita.server.engine.llama import LoadOptions, Model
from llamita.server.model.default_model import CHATML_TEMPLATE
from llamita.server.prompt import fit as prompt_module
from llamita.server.prompt.fit import chat_text, first_kept
from llamita.server.prompt.render import chat_prompt_messages, render_prompt
from llamita.server.template import Template, parse

TEMPLATE = parse(CHATML_TEMPLATE)  # SmolLM2's, with a tools section
TESTDATA = Path(__file__).parent / "testdata"
CHAT_TEMPLATES = ["chatml", "gemma-instruct", "llama3-instruct", "mistral-instruct", "phi-3", "qwen2.5-coder"]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
KWARGS: dict[str, Any] = {"model_system": "", "model_messages": [], "tools": None, "think": None}


def words(text: str) -> list[int]:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return [0] * len(text.split())


def dropping_one_turn_at_a_time(
    template: Template,
    messages: list[dict[str, Any]],
    num_ctx: int,
    system: str,
    tools: list[Any] | None = None,
    tokenize: Callable[[str], list[int]] = words,
) -> str:
    """The rendering before the search, which follows Ollama's chatPrompt loop literally."""
    msgs = chat_prompt_messages(messages, model_system=system)
    text = render_prompt(template, msgs, tools=tools)
    if len(tokenize(text)) <= num_ctx or len(msgs) <= 1:
        return text
    for start in range(1, len(msgs)):
        kept = [m for m in msgs[:start] if m.get("role") == "system"] + msgs[start:]
        text = render_prompt(template, kept, tools=tools)
        if len(tokenize(text)) <= num_ctx:
            return text
    return text


def random_chat(rng: random.Random, turns: int, longest: int = 40) -> list[dict[str, Any]]:
    roles = ["user", "assistant"]
    chat = []
    for i in range(turns):
        role = "system" if rng.random() < 0.1 else roles[i % 2]
        chat.append({"role": role, "content": " ".join(f"w{i}x{j}" for j in range(rng.randint(0, longest)))})
    return chat


def fast_and_linear(
    rng: random.Random,
    template: Template,
    tokenize: Callable[[str], list[int]],
    longest: int,
    turns: int = 60,
) -> tuple[str, str]:
    chat = random_chat(rng, rng.randint(1, turns), longest)
    num_ctx = rng.choice([8, 30, 100, 300, 1000, 5000])
    system = rng.choice(["", "Be brief."])
    tools = rng.choice([None, TOOLS])
    got = chat_text(
        template,
        chat,
        model_system=system,
        model_messages=[],
        tools=tools,
        think=None,
        num_ctx=num_ctx,
        tokenize=tokenize,
    )
    return got, dropping_one_turn_at_a_time(template, chat, num_ctx, system, tools, tokenize)


@pytest.mark.parametrize("seed", range(40))
def test_truncation_keeps_what_dropping_one_turn_at_a_time_keeps(seed: int) -> None:
    got, want = fast_and_linear(random.Random(seed), TEMPLATE, words, 40)
    assert got == want


@pytest.mark.parametrize("name", CHAT_TEMPLATES)
def test_every_chat_template_keeps_the_same_turns(name: str) -> None:
    template = parse((TESTDATA / f"{name}.gotmpl").read_text())
    rng = random.Random(name)
    for _ in range(15):
        got, want = fast_and_linear(rng, template, words, 40)
        assert got == want


@pytest.fixture(scope="module")
def vocab(smollm2_gguf: Path) -> Iterator[Model]:
    model = Model(smollm2_gguf, LoadOptions())
    try:
        yield model
    finally:
        model.close()


@pytest.mark.model
def test_with_the_real_tokenizer_the_same_turns_are_kept(vocab: Model) -> None:
    rng = random.Random(13)
    for _ in range(10):
        got, want = fast_and_linear(rng, TEMPLATE, vocab.tokenize, 100, turns=30)
        assert got == want


def counting_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts ``chat_text`` renders, in order."""
    rendered: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> str:
        rendered.append(render_prompt(*args, **kwargs))
        return rendered[-1]

    monkeypatch.setattr(prompt_module, "render_prompt", counting)
    return rendered


def test_a_long_chat_renders_about_the_kept_turns_only(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = counting_renders(monkeypatch)
    chat = [{"role": ("user", "assistant")[i % 2], "content": f"turn {i} {'word ' * 30}"} for i in range(300)]
    text = chat_text(TEMPLATE, chat, num_ctx=512, tokenize=words, **KWARGS)
    assert "turn 299 " in text and "turn 280 " not in text and len(words(text)) <= 512
    assert len(rendered) <= 8  # 1, 2, 4, 8, 16, 32 turns, then a bisection (Ollama: ~285 renders)
    assert max(len(r) for r in rendered) <= 2 * len(text) + 200  # never the whole 300-turn chat


def test_a_chat_that_fits_is_rendered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = counting_renders(monkeypatch)
    chat = [{"role": ("user", "assistant")[i % 2], "content": f"turn {i}"} for i in range(300)]
    text = chat_text(TEMPLATE, chat, num_ctx=5000, tokenize=words, **KWARGS)
    assert rendered == [text] and "turn 0<" in text


def test_a_long_chat_that_still_fits_is_kept_whole() -> None:
    """Long text in few tokens: the size guess says "too long" but the search reaches the start."""
    chat = [{"role": ("user", "assistant")[i % 2], "content": f"turn{i}" + "-" * 200} for i in range(50)]
    text = chat_text(TEMPLATE, chat, num_ctx=200, tokenize=words, **KWARGS)
    assert text == render_prompt(TEMPLATE, chat)


@pytest.mark.parametrize("seed", range(30))
def test_first_kept_finds_the_first_fitting_start(seed: int) -> None:
    rng = random.Random(seed)
    last = rng.randint(1, 500)
    boundary = rng.randint(0, last)  # starts from here on fit (last: none does)
    known = rng.choice([-1, 0]) if boundary > 0 else -1
    probes: list[int] = []

    def fits(start: int) -> bool:
        probes.append(start)
        return start >= boundary

    assert first_kept(fits, last, known) == min(boundary, last)
    assert len(probes) <= 2 * (last - boundary + 1).bit_length() + 1
    assert all(known < p < last for p in probes)


def test_no_truncation_when_it_is_off_or_fits() -> None:
    chat = [{"role": "user", "content": "word " * 100}, {"role": "user", "content": "last"}]
    full = render_prompt(TEMPLATE, chat)
    assert chat_text(TEMPLATE, chat, num_ctx=10, tokenize=words, truncate=False, **KWARGS) == full
    assert chat_text(TEMPLATE, chat, num_ctx=1000, tokenize=words, **KWARGS) == full
    only_last = chat_text(TEMPLATE, chat, num_ctx=10, tokenize=words, **KWARGS)
    assert "last" in only_last and "word" not in only_last  # the last message stays even when too long
