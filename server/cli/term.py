"""The terminal side of ``llamita run``: where output goes, word wrapping, the thinking block,
tool calls, the ``--verbose`` stats, and where input lines come from.

Rendering follows Ollama's CLI byte for byte on a terminal (grey thinking, ``ESC[nD``-style
wrapping) and drops the escapes when stdout is not one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from llamita.server import config
from llamita.server.gocompat.json import marshal
from llamita.server.gocompat.time import duration_string

GREY = "\x1b[38;5;245m"
BOLD = "\x1b[1m"
DEFAULT = "\x1b[0m"


def summary(metrics: dict[str, Any]) -> str:
    """Ollama's ``Metrics.Summary`` (``--verbose``): only the fields the server filled in."""
    lines: list[str] = []

    def row(label: str, value: str) -> None:
        lines.append(f"{label + ':':<22}{value}")

    total, load = metrics.get("total_duration", 0), metrics.get("load_duration", 0)
    prompt_n, prompt_ns = metrics.get("prompt_eval_count", 0), metrics.get("prompt_eval_duration", 0)
    eval_n, eval_ns = metrics.get("eval_count", 0), metrics.get("eval_duration", 0)
    if total > 0:
        row("total duration", duration_string(total))
    if load > 0:
        row("load duration", duration_string(load))
    if prompt_n > 0:
        row("prompt eval count", f"{prompt_n} token(s)")
    if prompt_ns > 0:
        row("prompt eval duration", duration_string(prompt_ns))
        row("prompt eval rate", f"{prompt_n / (prompt_ns / 1e9):.2f} tokens/s")
    if eval_n > 0:
        row("eval count", f"{eval_n} token(s)")
    if eval_ns > 0:
        row("eval duration", duration_string(eval_ns))
        row("eval rate", f"{eval_n / (eval_ns / 1e9):.2f} tokens/s")
    return "".join(line + "\n" for line in lines)


def _char_width(ch: str) -> int:
    """Terminal cells for one character (go-runewidth's rules, coarsely)."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf", "Cc"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str) -> int:
    return sum(_char_width(ch) for ch in text)


def render_tool_calls(calls: list[dict[str, Any]], plain: bool) -> str:
    """The CLI registers no tools, so any call the model makes is reported, not executed."""
    explain = "" if plain else GREY + BOLD
    values = "" if plain else DEFAULT
    lines = []
    for call in calls:
        function = call.get("function") or {}
        arguments = marshal(function.get("arguments") or {})
        lines.append(
            f"  Model called a non-existent function '{values}{function.get('name', '')}{explain}()' "
            f"with arguments: {values}{arguments}{explain}"
        )
    text = explain + "\n".join(lines)
    return text if plain else text + DEFAULT


def thinking_opening(plain: bool) -> str:
    text = "Thinking...\n"
    return text if plain else GREY + BOLD + text + DEFAULT + GREY


def thinking_closing(plain: bool) -> str:
    text = "...done thinking.\n\n"
    return text if plain else GREY + BOLD + text + DEFAULT


@dataclass
class Console:
    """Where the CLI writes: stdout for answers, stderr for help and stats (as Ollama splits them)."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    tty: bool | None = None
    columns: int | None = None

    def __post_init__(self) -> None:
        if self.tty is None:
            self.tty = isatty(self.out)

    def width(self) -> int:
        """Asked per chunk so a resized terminal is followed, as Ollama does."""
        if self.columns is not None:
            return self.columns
        try:
            return os.get_terminal_size(self.out.fileno()).columns or 80
        except (OSError, AttributeError, ValueError):
            return 80

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def say(self, text: str = "") -> None:
        self.write(text + "\n")

    def note(self, text: str = "") -> None:
        self.err.write(text + "\n")
        self.err.flush()


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class WordWrapper:
    """Ollama's displayResponse: stream text, moving a word that overflows to the next line.

    Wrapping happens at ``width - 5`` columns: the partial word already printed is erased with
    ``ESC[nD ESC[K`` and reprinted on a new line.  Two of Ollama's glitches are not copied: a
    word longer than the line is broken with a newline instead of being printed twice, and the
    character that triggered the wrap is counted in the next word.
    """

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled and bool(console.tty)
        self.line_length = 0
        self.word = ""

    def write(self, content: str) -> None:
        width = self.console.width()
        if not self.enabled or width < 10:
            self.console.write(content)
            return
        parts: list[str] = []
        for ch in content:
            cw = _char_width(ch)
            if self.line_length + 1 > width - 5:
                word_width = text_width(self.word)
                if word_width > width - 10:
                    parts.append("\n")
                    self.line_length, self.word = 0, ""
                else:
                    if word_width:
                        parts.append(f"\x1b[{word_width}D")
                    parts.append("\x1b[K\n" + self.word)
                    self.line_length = word_width
            parts.append(ch)
            self.line_length += cw
            if cw >= 2 or ch in " \t":
                self.word = ""
            elif ch in "\r\n":
                self.line_length, self.word = 0, ""
            else:
                self.word += ch
        self.console.write("".join(parts))


class ResponsePrinter:
    """Prints a streamed answer: an optional "Thinking..." block, the content, and tool calls."""

    def __init__(
        self, console: Console, word_wrap: bool, hide_thinking: bool, plain: bool, tools_first: bool = False
    ) -> None:
        self.console = console
        self.tools_first = tools_first  # /api/chat prints tool calls before the content
        self.word_wrap = word_wrap
        self.hide_thinking = hide_thinking
        self.plain = plain
        self.display = WordWrapper(console, word_wrap)
        self.thinking: list[str] = []
        self.opened = False
        self.closed = False

    def feed(self, thinking: str, content: str, tool_calls: list[dict[str, Any]]) -> None:
        if thinking and not self.hide_thinking:
            if not self.opened:
                self.console.write(thinking_opening(self.plain))
                self.opened, self.closed = True, False
            self.thinking.append(thinking)
            self.display.write(thinking)
        if self.opened and not self.closed and (content or tool_calls):
            if not "".join(self.thinking).endswith("\n"):
                self.console.write("\n")
            self.console.write(thinking_closing(self.plain))
            self.opened, self.closed = False, True
            self.display = WordWrapper(self.console, self.word_wrap)
        if self.tools_first and tool_calls:
            self.console.write(render_tool_calls(tool_calls, self.plain))
        self.display.write(content)
        if not self.tools_first and tool_calls:
            self.console.write(render_tool_calls(tool_calls, self.plain))

    @property
    def thinking_text(self) -> str:
        return "".join(self.thinking)


def stream_input(stream: TextIO, echo: TextIO | None = None) -> Callable[[str], str]:
    """An ``input``-like function over any text stream (scripted sessions, tests)."""

    def read(prompt: str) -> str:
        if echo is not None:
            echo.write(prompt)
        line = stream.readline()
        if not line:
            raise EOFError
        return line.removesuffix("\n").removesuffix("\r")

    return read


def terminal_input() -> tuple[Callable[[str], str], Callable[[bool], None]]:
    """GNU readline with Ollama's history file (``~/.ollama/history``, 100 lines, 0600)."""
    import readline

    path = Path.home() / ".ollama" / "history"
    enabled = not config.no_history()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDONLY, 0o600))
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(100)
    readline.set_auto_history(enabled)
    state = {"enabled": enabled}

    def set_history(on: bool) -> None:
        state["enabled"] = on
        readline.set_auto_history(on)

    def read(prompt: str) -> str:
        line = input(prompt)
        if state["enabled"] and line.strip():
            with contextlib.suppress(OSError):
                readline.write_history_file(path)
        return line

    return read, set_history
