"""The repository-level FIM format, for models trained on it (Qwen2.5-Coder and its vocabulary)::

    <|repo_name|>{repo}
    <|file_sep|>{path}
    {content}
    <|file_sep|>{current path}
    <|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>

Such a model saw whole repositories this way in training, so other files go in as files, not as comment
blocks inside the current one. It is chosen when the model's vocabulary has all of :data:`TOKENS`
(``/api/show`` with ``verbose``: see ``ModelInfo.special_tokens``); the request is raw (the model's
Ollama template only knows prefix and suffix), with the format's markers as stop strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .context import Window
from .fim import options
from .syntax import Mode

REPO_NAME = "<|repo_name|>"
FILE_SEP = "<|file_sep|>"
FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
TOKENS = (REPO_NAME, FILE_SEP, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE)
STOPS = ("<|endoftext|>", FILE_SEP, REPO_NAME, FIM_PREFIX, "<|fim_pad|>", "<|im_end|>")


def supported(special_tokens: Iterable[str]) -> bool:
    """Whether a vocabulary has every marker of the repo-level format."""
    return set(TOKENS) <= set(special_tokens)


def render(repo: str, files: Iterable[tuple[str, str]], current_path: str, prefix: str, suffix: str) -> str:
    """The raw prompt; ``files`` are (path, content) in output order, ``current_path`` is the file edited."""
    parts = [f"{REPO_NAME}{repo or 'workspace'}\n"]
    parts += [f"{FILE_SEP}{path}\n{content.rstrip(chr(10))}\n" for path, content in files]
    parts.append(
        f"{FILE_SEP}{current_path or 'untitled'}\n{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"
    )
    return "".join(parts)


def request_body(
    model: str,
    window: Window,
    mode: Mode,
    *,
    repo: str,
    files: Iterable[tuple[str, str]],
    current_path: str,
    num_predict: int = 128,
    temperature: float = 0.2,
    stop: list[str] | None = None,
    keep_alive: str = "",
) -> dict[str, Any]:
    """A raw ``/api/generate`` body in the repo-level format."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": render(repo, files, current_path, window.prefix, window.suffix),
        "raw": True,
        "options": options(mode, num_predict, temperature, [*STOPS, *(stop or [])]),
    }
    if keep_alive:
        body["keep_alive"] = keep_alive
    return body
