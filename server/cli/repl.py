"""The interactive chat of ``llamita run`` (Ollama's generateInteractive): slash commands,
multi-line input and the conversation kept client-side, plus the help texts it prints.

Lines come from an injectable ``input_fn`` so tests drive it with a script and a fake client.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from llamita.server.client import ResponseError
from llamita.server.gocompat.fmt import param_value, quote
from llamita.server.options import OptionError, format_params

from . import commands
from .session import RunClient, Session, infer_think, load_model, stream_chat
from .term import Console

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


@dataclass(eq=False)
class Repl:
    """Ollama's generateInteractive, reading lines from ``input_fn(prompt)``.

    ``input_fn`` behaves like :func:`input`: it returns a line without its newline, raises
    EOFError at end of input (Ctrl+D) and KeyboardInterrupt on Ctrl+C.  ``history(enabled)``
    is called by ``/set history`` and ``/set nohistory``.
    """

    client: RunClient
    session: Session
    console: Console
    input_fn: Callable[[str], str]
    history: Callable[[bool], None] | None = None
    think_explicit: bool = False
    buffer: str = field(default="", init=False)  # the message being typed
    multiline: Multiline = field(default=Multiline.NONE, init=False)
    use_alt: bool = field(default=False, init=False)  # "... " prompt inside a multi-line message

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
            self.console.note(f"warning: model {quote(self.session.model)} does not support thinking output")

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
            self.console.say(f"Couldn't set parameter: {quote(str(e))}")
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
                    say(f"  {key:<30} {param_value(value, bits=32)}")
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
