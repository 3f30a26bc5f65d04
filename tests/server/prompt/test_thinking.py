from __future__ import annotations

import pytest

from llamita.server.prompt.thinking import DEFAULT_TAGS, ThinkingParser, infer_tags

QWEN3_TURN = """{{- else if eq .Role "assistant" }}<|im_start|>assistant
{{ if (and $.IsThinkSet (and .Thinking (or $last (gt $i $lastUserIdx)))) -}}
<think>{{ .Thinking }}</think>
{{ end -}}"""


@pytest.mark.parametrize(
    ("template", "tags"),
    [
        (QWEN3_TURN, ("<think>", "</think>")),
        (
            "{{ if .Thinking }}<|begin_of_thought|>{{- .Thinking -}}<|end_of_thought|>{{ end }}",
            ("<|begin_of_thought|>", "<|end_of_thought|>"),
        ),
        ("{{ range .Messages }}{{ .Content }}{{ end }}", DEFAULT_TAGS),
        ("{{ .Thinking }}", DEFAULT_TAGS),  # no literal tags around it
    ],
)
def test_infer_tags(template: str, tags: tuple[str, str]) -> None:
    assert infer_tags(template) == tags


def _split(pieces: list[str], inside: bool = False) -> tuple[str, str]:
    parser = ThinkingParser()
    if inside:
        parser.start_inside()
    thinking, content = "", ""
    for piece in pieces:
        t, c = parser.feed(piece)
        thinking, content = thinking + t, content + c
    t, c = parser.flush()
    return thinking + t, content + c


TEXT = "<think>\nThe user greets me.\n</think>\n\nHello there!"


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(TEXT)])
def test_split_is_the_same_whatever_the_chunking(size: int) -> None:
    pieces = [TEXT[i : i + size] for i in range(0, len(TEXT), size)]
    assert _split(pieces) == ("The user greets me.\n", "Hello there!")


def test_no_thinking_block_is_all_content() -> None:
    assert _split(["Hello", " <think> is a tag"]) == ("", "Hello <think> is a tag")


def test_a_partial_tag_is_held_back_until_it_is_known() -> None:
    parser = ThinkingParser()
    assert parser.feed("  <thi") == ("", "")
    assert parser.feed("nk>why") == ("why", "")
    assert parser.feed(" not</th") == (" not", "")
    assert parser.feed("ought>") == ("</thought>", "")  # not the closing tag after all
    assert parser.feed("</think>ok") == ("", "ok")


def test_prompt_opened_block_starts_inside() -> None:
    assert _split(["reasoning", "</think>", "answer"], inside=True) == ("reasoning", "answer")


def test_unfinished_thinking_stays_thinking() -> None:
    assert _split(["<think>still going </thi"]) == ("still going </thi", "")


def test_text_that_only_starts_like_the_tag_is_content() -> None:
    assert _split(["<th", "e end>"]) == ("", "<the end>")
