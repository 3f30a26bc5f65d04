"""Chat truncation (``chat_text``): Ollama's result, in O(log M) renders instead of one per dropped turn."""

from __future__ import annotations

import random
from typing import Any

import pytest

from llamita.server.model.default_model import CHATML_TEMPLATE
from llamita.server.prompt import fit as prompt_module
from llamita.server.prompt.fit import chat_text
from llamita.server.prompt.render import chat_prompt_messages, render_prompt
from llamita.server.template import parse

TEMPLATE = parse(CHATML_TEMPLATE)


def words(text: str) -> list[int]:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return [0] * len(text.split())


def dropping_one_turn_at_a_time(messages: list[dict[str, Any]], num_ctx: int, system: str) -> str:
    """The rendering before this change, which follows Ollama's chatPrompt loop literally."""
    msgs = chat_prompt_messages(messages, model_system=system)
    text = render_prompt(TEMPLATE, msgs)
    if len(words(text)) <= num_ctx or len(msgs) <= 1:
        return text
    for start in range(1, len(msgs)):
        kept = [m for m in msgs[:start] if m.get("role") == "system"] + msgs[start:]
        text = render_prompt(TEMPLATE, kept)
        if len(words(text)) <= num_ctx:
            return text
    return text


def random_chat(rng: random.Random, turns: int) -> list[dict[str, Any]]:
    roles = ["user", "assistant"]
    chat = []
    for i in range(turns):
        role = "system" if rng.random() < 0.1 else roles[i % 2]
        chat.append({"role": role, "content": " ".join(f"w{i}x{j}" for j in range(rng.randint(0, 40)))})
    return chat


@pytest.mark.parametrize("seed", range(40))
def test_truncation_keeps_what_dropping_one_turn_at_a_time_keeps(seed: int) -> None:
    rng = random.Random(seed)
    chat = random_chat(rng, rng.randint(1, 60))
    num_ctx = rng.choice([8, 30, 100, 300, 1000, 5000])
    system = rng.choice(["", "Be brief."])
    got = chat_text(
        TEMPLATE,
        chat,
        model_system=system,
        model_messages=[],
        tools=None,
        think=None,
        num_ctx=num_ctx,
        tokenize=words,
    )
    assert got == dropping_one_turn_at_a_time(chat, num_ctx, system)


def test_a_long_chat_takes_logarithmically_many_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    renders = 0

    def counting(*args: Any, **kwargs: Any) -> str:
        nonlocal renders
        renders += 1
        return render_prompt(*args, **kwargs)

    monkeypatch.setattr(prompt_module, "render_prompt", counting)
    chat = [{"role": ("user", "assistant")[i % 2], "content": f"turn {i} {'word ' * 30}"} for i in range(300)]
    kwargs: dict[str, Any] = {"model_system": "", "model_messages": [], "tools": None, "think": None}
    text = chat_text(TEMPLATE, chat, num_ctx=512, tokenize=words, **kwargs)
    assert renders <= 11  # the full chat, then a binary search over 299 starts (Ollama: ~290 renders)
    assert "turn 299 " in text and "turn 280 " not in text and len(words(text)) <= 512


def test_no_truncation_when_it_is_off_or_fits() -> None:
    chat = [{"role": "user", "content": "word " * 100}, {"role": "user", "content": "last"}]
    kwargs: dict[str, Any] = {"model_system": "", "model_messages": [], "tools": None, "think": None}
    full = render_prompt(TEMPLATE, chat)
    assert chat_text(TEMPLATE, chat, num_ctx=10, tokenize=words, truncate=False, **kwargs) == full
    assert chat_text(TEMPLATE, chat, num_ctx=1000, tokenize=words, **kwargs) == full
    only_last = chat_text(TEMPLATE, chat, num_ctx=10, tokenize=words, **kwargs)
    assert "last" in only_last and "word" not in only_last  # the last message stays even when too long
