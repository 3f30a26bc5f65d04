"""``llamita run``: a one-shot answer or the interactive chat REPL, the way Ollama's CLI does them.

Ollama answers a one-shot prompt through ``/api/generate`` and runs the REPL over ``/api/chat``
(keeping the conversation client-side); before an interactive session it sends an empty
generate request so the model loads while the user types.  Everything here goes through
:class:`~llamita.server.client.Client`, and the REPL reads lines from an injectable function,
so tests can drive it with scripted input and a fake client.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import enum
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from llamita.server import config
from llamita.server.client import ResponseError
from llamita.server.gocompat.json import format_float, marshal
from llamita.server.options import OptionError, format_params
from llamita.server.store.names import parse_name

from . import commands
from .commands import CommandError
from .transfer import pull_model

GREY = "\x1b[38;5;245m"
BOLD = "\x1b[1m"
DEFAULT = "\x1b[0m"

# pflag gives --think a "no option" default: a bare --think means true and the next word stays
# a prompt word; a value must be attached with "=".  argparse matches an option string exactly
# before splitting on "=", so each accepted "--think=value" is registered as its own option.
THINK_FLAGS: dict[str, bool | str] = {
    "--think": True,
    "--think=": True,
    "--think=true": True,
    "--think=false": False,
    "--think=low": "low",
    "--think=medium": "medium",
    "--think=high": "high",
    "--think=max": "max",
}

Message = dict[str, Any]


class RunClient(Protocol):
    """What ``run`` needs from a client (the real one, or a fake in tests)."""

    def show(self, model: str, verbose: bool = False) -> dict[str, Any]: ...
    def show_session(self, model: str, system: str, options: dict[str, Any]) -> dict[str, Any]: ...
    def generate(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]: ...
    def chat(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]: ...
    def create(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]: ...
    def embed(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def list(self) -> list[dict[str, Any]]: ...
    def pull(self, model: str, insecure: bool = False) -> Iterator[dict[str, Any]]: ...


# --------------------------------------------------------------------------- formatting


def _frac(value: int, digits: int) -> str:
    """``value / 10**digits`` with trailing zeros of the fraction dropped (Go's fmtFrac)."""
    whole, rest = divmod(value, 10**digits)
    text = str(rest).rjust(digits, "0").rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` ("1.234567s", "12.3456ms", "1m30s"): the stats block uses it."""
    sign = "-" if ns < 0 else ""
    u = abs(int(ns))
    if u == 0:
        return "0s"
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_frac(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_frac(u, 6)}ms"
    hours, rest = divmod(u, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = _frac(rest, 9) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def keep_alive_json(seconds: float) -> str | int:
    """api.Duration's JSON: negative is ``-1``, anything else its Go duration string."""
    if seconds < 0:
        return -1
    return go_duration(round(seconds * 1e9))


def summary(metrics: dict[str, Any]) -> str:
    """Ollama's ``Metrics.Summary`` (``--verbose``): only the fields the server filled in."""
    lines: list[str] = []

    def row(label: str, value: str) -> None:
        lines.append(f"{label + ':':<22}{value}")

    total, load = metrics.get("total_duration", 0), metrics.get("load_duration", 0)
    prompt_n, prompt_ns = metrics.get("prompt_eval_count", 0), metrics.get("prompt_eval_duration", 0)
    eval_n, eval_ns = metrics.get("eval_count", 0), metrics.get("eval_duration", 0)
    if total > 0:
        row("total duration", go_duration(total))
    if load > 0:
        row("load duration", go_duration(load))
    if prompt_n > 0:
        row("prompt eval count", f"{prompt_n} token(s)")
    if prompt_ns > 0:
        row("prompt eval duration", go_duration(prompt_ns))
        row("prompt eval rate", f"{prompt_n / (prompt_ns / 1e9):.2f} tokens/s")
    if eval_n > 0:
        row("eval count", f"{eval_n} token(s)")
    if eval_ns > 0:
        row("eval duration", go_duration(eval_ns))
        row("eval rate", f"{eval_n / (eval_ns / 1e9):.2f} tokens/s")
    return "".join(line + "\n" for line in lines)


def go_value(value: Any) -> str:
    """Go's ``%v`` for a FormatParams value (float32, int, bool or []string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value, 32)
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    return str(value)


def go_quote(text: str) -> str:
    """Go's ``%q`` of a printable string."""
    return json.dumps(text, ensure_ascii=False)


def format_field(fmt: str) -> Any:
    """The request ``format`` for a ``--format`` value: "json" is quoted, anything else is raw JSON."""
    if not fmt:
        return None
    if fmt == "json":
        return "json"
    try:
        return json.loads(fmt)
    except ValueError as e:
        raise CommandError(f"invalid format {go_quote(fmt)}: {e}") from e


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


# --------------------------------------------------------------------------- output


@dataclass
class Console:
    """Where the CLI writes: stdout for answers, stderr for help and stats (as Ollama splits them)."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    tty: bool | None = None
    columns: int | None = None

    def __post_init__(self) -> None:
        if self.tty is None:
            self.tty = _isatty(self.out)

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


def _isatty(stream: Any) -> bool:
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

    def __init__(self, console: Console, word_wrap: bool, hide_thinking: bool, plain: bool) -> None:
        self.console = console
        self.word_wrap = word_wrap
        self.hide_thinking = hide_thinking
        self.plain = plain
        self.display = WordWrapper(console, word_wrap)
        self.thinking: list[str] = []
        self.opened = False
        self.closed = False

    def feed(self, thinking: str, content: str, tool_calls: list[dict[str, Any]], tools_first: bool) -> None:
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
        if tools_first and tool_calls:
            self.console.write(render_tool_calls(tool_calls, self.plain))
        self.display.write(content)
        if not tools_first and tool_calls:
            self.console.write(render_tool_calls(tool_calls, self.plain))

    @property
    def thinking_text(self) -> str:
        return "".join(self.thinking)


# --------------------------------------------------------------------------- session


@dataclass
class Session:
    """Ollama's runOptions: everything a run (and each REPL turn) sends."""

    model: str
    parent_model: str = ""
    loaded_messages: list[Message] = field(default_factory=list)
    prompt: str = ""
    messages: list[Message] = field(default_factory=list)
    word_wrap: bool = True
    format: str = ""
    system: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: float | None = None
    think: bool | str | None = None
    hide_thinking: bool = False
    verbose: bool = False

    def copy(self) -> Session:
        return copy.deepcopy(self)

    def apply_show(self, info: dict[str, Any]) -> None:
        """Remember the parent (for /save) and the Modelfile's MESSAGEs (printed, and saved)."""
        self.parent_model = (info.get("details") or {}).get("parent_model", "") or ""
        self.loaded_messages = list(info.get("messages") or [])

    def _common(self, body: dict[str, Any]) -> dict[str, Any]:
        fmt = format_field(self.format)
        if fmt is not None:
            body["format"] = fmt
        if self.options:
            body["options"] = dict(self.options)
        if self.keep_alive is not None:
            body["keep_alive"] = keep_alive_json(self.keep_alive)
        if self.think is not None:
            body["think"] = self.think
        return body

    def chat_request(self) -> dict[str, Any]:
        return self._common({"model": self.model, "messages": list(self.messages)})

    def generate_request(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "prompt": self.prompt}
        if self.system:
            body["system"] = self.system
        return self._common(body)

    def load_request(self) -> dict[str, Any]:
        """Empty prompt: the server loads the model and answers ``done_reason: "load"``."""
        body: dict[str, Any] = {"model": self.model, "prompt": ""}
        if self.keep_alive is not None:
            body["keep_alive"] = keep_alive_json(self.keep_alive)
        if self.think is not None:
            body["think"] = self.think
        return body

    def create_request(self, name: str) -> dict[str, Any]:
        """``/save``: a new model FROM the parent (or this model) carrying the session's state."""
        parent = self.parent_model
        if parent and not parse_name(parent).is_valid:
            parent = ""
        request: dict[str, Any] = {"model": name, "from": parent or self.model}
        if self.system:
            request["system"] = self.system
        if self.options:
            request["parameters"] = dict(self.options)
        messages = [*self.loaded_messages, *self.messages]
        if messages:
            request["messages"] = messages
        return request


def infer_think(capabilities: list[str], current: bool | str | None, explicit: bool) -> bool | str | None:
    """A user's choice wins; otherwise thinking models think and others leave ``think`` unset."""
    if explicit:
        return current
    return True if "thinking" in capabilities else None


def load_model(client: RunClient, session: Session) -> None:
    """Ollama's loadOrUnloadModel: check the model, then an empty generate to (un)load it."""
    client.show(session.model)
    for _ in client.generate(session.load_request()):
        pass


def stream_chat(client: RunClient, session: Session, console: Console) -> Message | None:
    """One REPL turn over ``/api/chat``; returns the assistant message to keep, or None."""
    printer = ResponsePrinter(console, session.word_wrap, session.hide_thinking, plain=not console.tty)
    latest: dict[str, Any] = {}
    role = "assistant"
    content: list[str] = []
    stream = client.chat(session.chat_request())
    try:
        for chunk in stream:
            latest = chunk
            message = chunk.get("message") or {}
            role = message.get("role", role)
            content.append(message.get("content", ""))
            printer.feed(
                message.get("thinking", ""),
                message.get("content", ""),
                message.get("tool_calls") or [],
                tools_first=True,
            )
    except KeyboardInterrupt:
        _close(stream)
        console.write("\n")
        return None
    except ResponseError as e:
        if "upstream error" in str(e):
            console.say("An error occurred while processing your message. Please try again.")
            console.say()
            return None
        raise
    if session.messages:
        console.write("\n\n")
    if session.verbose:
        console.err.write(summary(latest))
        console.err.flush()
    reply: Message = {"role": role, "content": "".join(content)}
    if printer.thinking_text:
        reply["thinking"] = printer.thinking_text
    return reply


def stream_generate(client: RunClient, session: Session, console: Console) -> None:
    """The one-shot path over ``/api/generate``, followed by a blank line as Ollama prints."""
    plain = not console.tty
    printer = ResponsePrinter(console, session.word_wrap, session.hide_thinking, plain=plain)
    latest: dict[str, Any] = {}
    stream = client.generate(session.generate_request())
    try:
        for chunk in stream:
            latest = chunk
            printer.feed(
                chunk.get("thinking", ""),
                chunk.get("response", ""),
                chunk.get("tool_calls") or [],
                tools_first=False,
            )
    except KeyboardInterrupt:
        _close(stream)
        return
    if session.prompt:
        console.write("\n\n")
    if latest.get("done") and session.verbose:
        console.err.write(summary(latest))
        console.err.flush()


def _close(stream: Iterator[Any]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


# --------------------------------------------------------------------------- REPL

USAGE = """Available Commands:
  /set            Set session variables
  /show           Show model information
  /load <model>   Load a session or model
  /save <model>   Save your current session
  /clear          Clear session context
  /bye            Exit
  /?, /help       Help for a command
  /? shortcuts    Help for keyboard shortcuts

Use \"\"\" to begin a multi-line message.
"""

USAGE_SET = """Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set history           Enable history
  /set nohistory         Disable history
  /set wordwrap          Enable wordwrap
  /set nowordwrap        Disable wordwrap
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
  /set think             Enable thinking
  /set nothink           Disable thinking
"""

USAGE_SHORTCUTS = """Available keyboard shortcuts:
  Ctrl + a            Move to the beginning of the line (Home)
  Ctrl + e            Move to the end of the line (End)
   Alt + b            Move back (left) one word
   Alt + f            Move forward (right) one word
  Ctrl + k            Delete the sentence after the cursor
  Ctrl + u            Delete the sentence before the cursor
  Ctrl + w            Delete the word before the cursor

  Ctrl + l            Clear the screen
  Ctrl + c            Stop the model from responding
  Ctrl + d            Exit llamita (/bye)
"""

USAGE_SHOW = """Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template
"""

USAGE_PARAMETERS = """Available Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter num_gpu <int>          The number of layers to send to the GPU
  /set parameter stop <string> <string> ...   Set the stop parameters
"""

MULTILINE = '"""'


class Multiline(enum.Enum):
    NONE = 0
    PROMPT = 1
    SYSTEM = 2


def _cut_suffix(text: str, suffix: str) -> tuple[str, bool]:
    if text.endswith(suffix):
        return text[: -len(suffix)], True
    return text, False


class Repl:
    """Ollama's generateInteractive, reading lines from ``input_fn(prompt)``.

    ``input_fn`` behaves like :func:`input`: it returns a line without its newline, raises
    EOFError at end of input (Ctrl+D) and KeyboardInterrupt on Ctrl+C.  ``history(enabled)``
    is called by ``/set history`` and ``/set nohistory``.
    """

    def __init__(
        self,
        client: RunClient,
        session: Session,
        console: Console,
        input_fn: Callable[[str], str],
        history: Callable[[bool], None] | None = None,
        think_explicit: bool = False,
    ) -> None:
        self.client = client
        self.session = session
        self.console = console
        self.input_fn = input_fn
        self.history = history
        self.think_explicit = think_explicit
        self.buffer = ""
        self.multiline = Multiline.NONE
        self.use_alt = False

    def loop(self) -> int:
        while True:
            try:
                line = self.input_fn("... " if self.use_alt else ">>> ")
            except EOFError:
                self.console.say()
                return 0
            except KeyboardInterrupt:
                self.console.say("\nUse Ctrl + d or /bye to exit.")
                self.use_alt, self.buffer, self.multiline = False, "", Multiline.NONE
                continue

            if self.multiline is not Multiline.NONE:
                before, closed = _cut_suffix(line, MULTILINE)
                self.buffer += before
                if not closed:
                    self.buffer += "\n"
                    self.use_alt = True
                    continue
                if self.multiline is Multiline.SYSTEM:
                    self.session.system = self.buffer
                    self.session.messages.append({"role": "system", "content": self.buffer})
                    self.console.say("Set system message.")
                    self.buffer = ""
                self.multiline = Multiline.NONE
                self.use_alt = False
            elif line.startswith(MULTILINE):
                text, closed = _cut_suffix(line[len(MULTILINE) :], MULTILINE)
                self.buffer += text
                if not closed:
                    self.buffer += "\n"
                    self.multiline = Multiline.PROMPT
                    self.use_alt = True
            elif line.startswith("/"):
                if self.command(line):
                    return 0
            else:
                self.buffer += line

            if self.buffer and self.multiline is Multiline.NONE:
                self.send(self.buffer)
                self.buffer = ""

    def send(self, text: str) -> None:
        self.session.messages.append({"role": "user", "content": text})
        try:
            reply = stream_chat(self.client, self.session, self.console)
        except ResponseError as e:
            if "does not support thinking" in str(e) or "invalid think value" in str(e):
                self.console.say(f"error: {e}")
                return
            raise
        if reply is not None:
            self.session.messages.append(reply)

    # Ollama matches commands by prefix, in this order ("/settings x" is "/set settings"...).
    def command(self, line: str) -> bool:
        """Run one slash command; True means leave the REPL."""
        args = line.split()
        if line.startswith("/list"):
            listing = argparse.Namespace(prefix=args[1] if len(args) > 1 else "")
            with contextlib.redirect_stdout(self.console.out):
                commands.list_models(self.client, listing)
        elif line.startswith("/load"):
            self.load(args)
        elif line.startswith("/save"):
            self.save(args)
        elif line.startswith("/clear"):
            self.session.messages = []
            if self.session.system:
                self.session.messages.append({"role": "system", "content": self.session.system})
            self.console.say("Cleared session context")
        elif line.startswith("/set"):
            self.set(args)
        elif line.startswith("/show"):
            self.show(args)
        elif line.startswith(("/help", "/?")):
            self.help(args)
        elif line.startswith(("/exit", "/bye")):
            return True
        else:
            self.console.say(f"Unknown command '{args[0]}'. Type /? for help")
        return False

    def help(self, args: list[str]) -> None:
        if len(args) == 1:
            self.console.note(USAGE)
            return
        text = {
            "set": USAGE_SET,
            "/set": USAGE_SET,
            "show": USAGE_SHOW,
            "/show": USAGE_SHOW,
            "shortcut": USAGE_SHORTCUTS,
            "shortcuts": USAGE_SHORTCUTS,
        }.get(args[1])
        if text:
            self.console.note(text)

    def load(self, args: list[str]) -> None:
        if len(args) != 2:
            self.console.say("Usage:\n  /load <modelname>")
            return
        original = self.session.copy()
        session = self.session
        session.model = args[1]
        session.messages = []
        session.loaded_messages = []
        self.console.say(f"Loading model '{session.model}'")
        try:
            info = self.client.show(session.model)
            session.apply_show(info)
            session.think = infer_think(info.get("capabilities") or [], session.think, self.think_explicit)
            load_model(self.client, session)
        except ResponseError as e:
            if "not found" in str(e):
                self.console.say(f"Couldn't find model '{session.model}'")
                self.session = original
                return
            if "does not support thinking" in str(e):
                self.console.say(f"error: {e}")
                return
            raise

    def save(self, args: list[str]) -> None:
        if len(args) != 2:
            self.console.say("Usage:\n  /save <modelname>")
            return
        try:
            for _ in self.client.create(self.session.create_request(args[1])):
                pass
        except ResponseError as e:
            if "invalid model name" in str(e):
                self.console.say(f"error: The model name '{args[1]}' is invalid")
                return
            raise
        self.console.say(f"Created new model '{args[1]}'")

    def _warn_without_thinking(self) -> None:
        """``/set think`` on a model that cannot think is allowed, but worth a warning."""
        try:
            info = self.client.show(self.session.model)
        except ResponseError:
            return
        if "thinking" not in (info.get("capabilities") or []):
            self.console.note(
                f"warning: model {go_quote(self.session.model)} does not support thinking output"
            )

    def set(self, args: list[str]) -> None:
        session, say = self.session, self.console.say
        if len(args) < 2:
            self.console.note(USAGE_SET)
            return
        what = args[1]
        if what in ("history", "nohistory"):
            if self.history is not None:
                self.history(what == "history")
        elif what in ("wordwrap", "nowordwrap"):
            session.word_wrap = what == "wordwrap"
            say(f"Set '{what}' mode.")
        elif what in ("verbose", "quiet"):
            session.verbose = what == "verbose"
            say(f"Set '{what}' mode.")
        elif what == "think":
            level = args[2] if len(args) > 2 else ""
            session.think = level or True
            self.think_explicit = True
            self._warn_without_thinking()
            say(f"Set 'think' mode to '{level}'." if level else "Set 'think' mode.")
        elif what == "nothink":
            session.think = False
            self.think_explicit = True
            self._warn_without_thinking()
            say("Set 'nothink' mode.")
        elif what == "format":
            if len(args) < 3 or args[2] != "json":
                say("Invalid or missing format. For 'json' mode use '/set format json'")
            else:
                session.format = args[2]
                say(f"Set format to '{args[2]}' mode.")
        elif what == "noformat":
            session.format = ""
            say("Disabled format.")
        elif what == "parameter":
            self.set_parameter(args)
        elif what == "system":
            self.set_system(args)
        else:
            say(f"Unknown command '/set {what}'. Type /? for help")

    def set_parameter(self, args: list[str]) -> None:
        if len(args) < 4:
            self.console.note(USAGE_PARAMETERS)
            return
        name, values = args[2], args[3:]
        try:
            typed = format_params({name: values})
        except OptionError as e:
            self.console.say(f"Couldn't set parameter: {go_quote(str(e))}")
            return
        self.console.say(f"Set parameter '{name}' to '{', '.join(values)}'")
        if name in typed:
            self.session.options[name] = typed[name]

    def set_system(self, args: list[str]) -> None:
        if len(args) < 3:
            self.console.note(USAGE_SET)
            return
        text = " ".join(args[2:])
        multiline = Multiline.NONE
        if text.startswith(MULTILINE):
            text, closed = _cut_suffix(text[len(MULTILINE) :], MULTILINE)
            multiline = Multiline.NONE if closed else Multiline.SYSTEM
        if multiline is Multiline.SYSTEM:
            # Ollama forgets the newline after the first line here ("You are" + "a pirate"
            # becomes "You area pirate"); keep it, as a multi-line prompt does.
            self.buffer += text + ("\n" if text else "")
            self.multiline = multiline
            self.use_alt = True
            return
        session = self.session
        session.system = text
        message = {"role": "system", "content": text}
        if session.messages and session.messages[-1].get("role") == "system":
            session.messages[-1] = message
        else:
            session.messages.append(message)
        self.console.say("Set system message.")
        self.buffer = ""

    def show(self, args: list[str]) -> None:
        session, say = self.session, self.console.say
        if len(args) < 2:
            self.console.note(USAGE_SHOW)
            return
        try:
            info = self.client.show_session(session.model, session.system, session.options)
        except ResponseError:
            say("error: couldn't get model")
            raise
        what = args[1]
        if what == "info":
            # Ollama prints the same tables as `show MODEL`, but to stderr.
            flags = dict.fromkeys(("license", "modelfile", "parameters", "system", "template"), False)
            request = argparse.Namespace(model=session.model, verbose=False, **flags)
            with contextlib.redirect_stdout(self.console.err):
                commands.show(self.client, request)
        elif what == "license":
            say(info.get("license") or "No license was specified for this model.")
        elif what == "modelfile":
            say(info.get("modelfile", ""))
        elif what == "parameters":
            say("Model defined parameters:")
            if not info.get("parameters"):
                say("  No additional parameters were specified for this model.")
            else:
                for line in info["parameters"].split("\n"):
                    say(f"  {line}")
            say()
            if session.options:
                say("User defined parameters:")
                for key, value in session.options.items():
                    say(f"  {key:<30} {go_value(value)}")
                say()
        elif what == "system":
            if session.system:
                say(session.system + "\n")
            elif info.get("system"):
                say(info["system"] + "\n")
            else:
                say("No system message was specified for this model.")
        elif what == "template":
            say(info.get("template") or "No prompt template was specified for this model.")
        else:
            say(f"Unknown command '/show {what}'. Type /? for help")


# --------------------------------------------------------------------------- terminal input


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
    enabled = not config.env_bool("OLLAMA_NOHISTORY")
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


# --------------------------------------------------------------------------- the subcommand


class _IntermixedParser(argparse.ArgumentParser):
    """Cobra lets flags and prompt words mix (``run m hello --verbose world``); plain argparse
    would bind the empty prompt at ``m`` and reject the words after a flag."""

    _intermixing = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._intermixing:  # parse_known_intermixed_args calls back into this method
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``run`` with Ollama's flags (``--truncate``/``--dimensions`` are left out)."""
    parser_class = sub._parser_class
    sub._parser_class = _IntermixedParser
    try:
        p = sub.add_parser("run", help="run a model")
    finally:
        sub._parser_class = parser_class
    p.add_argument("model")
    p.add_argument("prompt", nargs="*", help="prompt (piped stdin is prepended)")
    p.add_argument("--keepalive", default="", help="duration to keep a model loaded (e.g. 5m)")
    p.add_argument("--verbose", action="store_true", help="show timings for response")
    p.add_argument("--insecure", action="store_true", help="use an insecure registry")
    p.add_argument(
        "--nowordwrap", action="store_true", help="don't wrap words to the next line automatically"
    )
    p.add_argument("--format", default="", help="response format (e.g. json)")
    for flag, value in THINK_FLAGS.items():
        p.add_argument(
            flag,
            dest="think",
            action="store_const",
            const=value,
            default=None,
            help="enable thinking mode: --think[=true|false|low|medium|high|max]"
            if flag == "--think"
            else argparse.SUPPRESS,
        )
    p.add_argument("--hidethinking", action="store_true", help="hide thinking output (if provided)")


def _read_stdin(stdin: TextIO) -> str:
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return buffer.read().decode("utf-8", errors="replace")
    return stdin.read()


def _print_loaded(session: Session, console: Console) -> None:
    """A model created with MESSAGE lines shows that conversation before the first prompt."""
    for message in session.loaded_messages:
        if message.get("role") == "user":
            console.say(f">>> {message.get('content', '')}")
        elif message.get("role") == "assistant":
            WordWrapper(console, session.word_wrap).write(message.get("content", ""))
            console.write("\n\n")


def _embed(client: RunClient, session: Session, console: Console) -> int:
    if not session.prompt:
        raise CommandError(
            f'embedding models require input text. Usage: llamita run {session.model} "your text here"'
        )
    body: dict[str, Any] = {"model": session.model, "input": session.prompt}
    if session.keep_alive is not None:
        body["keep_alive"] = keep_alive_json(session.keep_alive)
    embeddings = client.embed(body).get("embeddings") or []
    if not embeddings:
        raise CommandError("no embeddings returned")
    console.say(marshal(embeddings[0]))
    return 0


def run(
    client: RunClient,
    args: argparse.Namespace,
    *,
    stdin: TextIO | None = None,
    console: Console | None = None,
    input_fn: Callable[[str], str] | None = None,
) -> int:
    """Ollama's RunHandler: one-shot when there is a prompt or a pipe, else the REPL."""
    stdin = stdin if stdin is not None else sys.stdin
    console = console or Console()
    session = Session(
        model=args.model,
        word_wrap=not args.nowordwrap,
        format=args.format,
        think=args.think,
        hide_thinking=args.hidethinking,
        verbose=args.verbose,
    )
    format_field(session.format)  # reject a bad --format before loading anything
    if args.keepalive:
        try:
            session.keep_alive = config.parse_duration(args.keepalive)
        except ValueError as e:
            raise CommandError(str(e)) from e

    prompts = list(args.prompt)
    interactive = True
    if not _isatty(stdin):
        piped = _read_stdin(stdin)
        if piped:
            prompts.insert(0, piped)
        interactive = False
    session.prompt = " ".join(prompts)
    if prompts or not console.tty:
        interactive = False

    # Ollama's RunHandler: a model the server does not have (404) is pulled first, with
    # progress bars, and then shown again.
    try:
        info = client.show(session.model)
    except ResponseError as e:
        if e.status != 404:
            raise
        pull_model(client, session.model, insecure=args.insecure)
        info = client.show(session.model)
    capabilities = info.get("capabilities") or []
    session.think = infer_think(capabilities, session.think, explicit=args.think is not None)
    session.apply_show(info)

    if "embedding" in capabilities:
        return _embed(client, session, console)
    if "image" in capabilities:
        raise CommandError("image generation models are not currently supported")

    if not interactive:
        stream_generate(client, session, console)
        return 0

    load_model(client, session)
    _print_loaded(session, console)
    history: Callable[[bool], None] | None = None
    if input_fn is None:
        input_fn, history = terminal_input()
    repl = Repl(client, session, console, input_fn, history, think_explicit=args.think is not None)
    return repl.loop()
