"""Split a thinking model's output into ``thinking`` and ``content``, as Ollama does.

Thinking models (Qwen3, DeepSeek-R1, ...) write their reasoning between tags such as
``<think>`` and ``</think>`` before the answer.  Ollama returns the two parts separately
(``thinking`` / ``response`` on generate, ``message.thinking`` / ``message.content`` on chat),
and clients such as Open WebUI show them apart.  The tags come from the model's template: the
literal text around ``{{ .Thinking }}`` where the template replays earlier assistant turns.
When the rendered prompt already ends with the opening tag (templates that open the block for
the model), parsing starts inside the thinking block, as in Ollama.

Streaming: text that could still be the start of a tag is held back until it is known.
"""

from __future__ import annotations

import enum
import re

DEFAULT_TAGS = ("<think>", "</think>")

# {{ .Thinking }} with optional trim markers, and the literal text right before and after it.
_AROUND_THINKING = re.compile(r"([^{}\s]*)\s*\{\{-?\s*\.Thinking\s*-?\}\}\s*([^{}\s]*)")


def infer_tags(template_source: str) -> tuple[str, str]:
    """The opening and closing tags a template writes around ``.Thinking`` (default ``<think>``)."""
    for match in _AROUND_THINKING.finditer(template_source):
        opening, closing = match.group(1), match.group(2)
        if opening and closing:
            return opening, closing
    return DEFAULT_TAGS


class _State(enum.Enum):
    LOOKING_FOR_OPENING = 0
    BEFORE_THINKING = 1  # the opening tag was seen; whitespace before the reasoning is dropped
    THINKING = 2
    AFTER_THINKING = 3  # the closing tag was seen; whitespace before the answer is dropped
    CONTENT = 4


class ThinkingParser:
    """Incremental splitter: ``feed`` text as it is generated, ``flush`` at the end."""

    def __init__(self, opening: str = DEFAULT_TAGS[0], closing: str = DEFAULT_TAGS[1]) -> None:
        self.opening = opening
        self.closing = closing
        self._state = _State.LOOKING_FOR_OPENING
        self._buffer = ""

    def start_inside(self) -> None:
        """The prompt already opened the thinking block."""
        self._state = _State.BEFORE_THINKING

    def feed(self, text: str) -> tuple[str, str]:
        """Returns the ``(thinking, content)`` that is certain after ``text``."""
        self._buffer += text
        thinking, content = "", ""
        while True:
            if self._state is _State.LOOKING_FOR_OPENING:
                stripped = self._buffer.lstrip()
                if stripped.startswith(self.opening):
                    self._buffer = stripped[len(self.opening) :]
                    self._state = _State.BEFORE_THINKING
                elif stripped and not self.opening.startswith(stripped):
                    self._state = _State.CONTENT  # no thinking block: everything is the answer
                else:
                    return thinking, content  # empty, or maybe the start of the opening tag
            elif self._state is _State.THINKING:
                at = self._buffer.find(self.closing)
                if at >= 0:
                    thinking += self._buffer[:at]
                    self._buffer = self._buffer[at + len(self.closing) :]
                    self._state = _State.AFTER_THINKING
                else:
                    keep = _partial_suffix(self._buffer, self.closing)
                    cut = len(self._buffer) - keep
                    thinking += self._buffer[:cut]
                    self._buffer = self._buffer[cut:]
                    return thinking, content
            elif self._state in (_State.BEFORE_THINKING, _State.AFTER_THINKING):
                self._buffer = self._buffer.lstrip()
                if not self._buffer:
                    return thinking, content
                before = self._state is _State.BEFORE_THINKING
                self._state = _State.THINKING if before else _State.CONTENT
            else:
                content += self._buffer
                self._buffer = ""
                return thinking, content

    def flush(self) -> tuple[str, str]:
        """At the end of generation: what was held back was not a tag."""
        rest, self._buffer = self._buffer, ""
        if self._state in (_State.BEFORE_THINKING, _State.THINKING):
            return rest.lstrip(), ""
        if self._state is _State.AFTER_THINKING:
            return "", rest.lstrip()
        return "", rest


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0
