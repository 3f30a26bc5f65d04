r"""Modelfiles: parsing and serialising (:mod:`.modelfile_plan` turns one into a create request).

The grammar is Ollama's (``parser/parser.go``), which is defined by a rune state machine
rather than by a tokenizer; this module reproduces that machine's observable behaviour,
quirks included, so that a Modelfile accepted (or rejected) by Ollama is accepted (or
rejected, with the same message) here::

    modelfile   = { blank | comment | instruction } ;
    blank       = " " | "\t" | "\r" | "\n" ;
    comment     = "#" , { any rune but newline } ;  (only where an instruction could start)
    instruction = keyword , sep , rest ;
    sep         = " " | "\t" ;                       (exactly one; more blanks join the next part)
    keyword     = letter , { letter } ;              (ASCII letters, case-insensitive: FROM
                                                      PARAMETER TEMPLATE SYSTEM ADAPTER LICENSE
                                                      MESSAGE REQUIRES DRAFT RENDERER PARSER)
    rest        = value                              (every keyword but the two below)
                | pname , sep , value                (PARAMETER; pname = [A-Za-z0-9_]*, case kept)
                | role , sep , value ;               (MESSAGE; role = system | user | assistant,
                                                      case-sensitive)
    value       = the runes up to the first newline at which the text collected so far,
                  trimmed of blanks, is balanced: it does not start with a double quote, or
                  it is "..." (two or more runes), or it opens and closes with three double
                  quotes (six or more runes).  The quotes are removed and the inner text is
                  kept verbatim, newlines included, so "..." may span lines too.  A "#" in a
                  value is literal; single quotes are not special.

Other observable rules: a UTF-8 BOM is dropped and UTF-16 with a BOM is decoded; runes Go
does not consider printable (controls, format characters, spaces other than U+0020) are
dropped, except that tabs and newlines inside a value are kept; at least one FROM is
required.  Error line numbers count the newline runes read so far (so an error triggered by
a newline names the next line, and CRLF counts twice), exactly like Ollama.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass, field
from enum import Enum, auto

__all__ = ["Command", "Modelfile", "ModelfileError", "parse", "quote"]

COMMANDS = (
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
)
ROLES = ("system", "user", "assistant")

INVALID_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", "draft", '
    '"renderer", "parser", "parameter", "message", or "requires"'
)
INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'
UNEXPECTED_EOF = "unexpected EOF"
MISSING_FROM = "no FROM line"

# Commands whose value is written back as ``KEYWORD value`` (FROM and MESSAGE differ, and any
# other name is a PARAMETER).
_PLAIN_COMMANDS = frozenset(
    {"license", "template", "system", "adapter", "renderer", "parser", "requires", "draft"}
)

_BLANKS = " \t"
_NEWLINES = "\r\n"
_TRIM = " \t\r\n"


class ModelfileError(ValueError):
    """A Modelfile Ollama would reject; ``str()`` is Ollama's message, ``line`` its line number."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(f"(line {line}): {reason}" if line else reason)
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class Command:
    """One instruction.  ``name`` is ``model`` for FROM, the parameter's own name for
    PARAMETER, otherwise the lower-cased keyword; MESSAGE args are ``"role: content"``."""

    name: str
    args: str

    def __str__(self) -> str:
        if self.name == "model":
            return f"FROM {self.args}"
        if self.name in _PLAIN_COMMANDS:
            return f"{self.name.upper()} {quote(self.args)}"
        if self.name == "message":
            role, _, content = self.args.partition(": ")
            return f"MESSAGE {role} {quote(content)}"
        return f"PARAMETER {self.name} {quote(self.args)}"


@dataclass
class Modelfile:
    """The ordered instructions of a Modelfile; ``str()`` writes it back out."""

    commands: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(f"{command}\n" for command in self.commands)


def quote(value: str) -> str:
    """Quote a value the way Ollama writes Modelfiles: only when trimming or a newline would
    otherwise change it, and with triple quotes when the value itself contains ``"``."""
    if "\n" in value or value.startswith(" ") or value.endswith(" "):
        return f'"""{value}"""' if '"' in value else f'"{value}"'
    return value


def _decode(text: str | bytes | bytearray) -> str:
    """Decode like Go's ``unicode.BOMOverride(UTF8)``: a BOM picks the encoding and is dropped."""
    if isinstance(text, str):
        return text.removeprefix("\ufeff")
    data = bytes(text)
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
    ):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace")
    return data.decode("utf-8", "replace")


def _printable(ch: str) -> bool:
    """Go's ``strconv.IsPrint``: letters, marks, numbers, punctuation, symbols and U+0020."""
    if ch < "\x7f":
        return ch >= " "
    return unicodedata.category(ch)[0] in "LMNPS"


def _is_letter(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def _is_name_char(ch: str) -> bool:
    """PARAMETER names may also use digits and underscores (``num_ctx``)."""
    return ch == "_" or (ch.isascii() and ch.isalnum())


def _unquote(text: str) -> str | None:
    """The inside of a balanced value, or None while a quote is still open."""
    if text.startswith('"""'):
        return text[3:-3] if len(text) >= 6 and text.endswith('"""') else None
    if text.startswith('"'):
        return text[1:-1] if len(text) >= 2 and text.endswith('"') else None
    return text


def _is_balanced(chars: list[str]) -> bool:
    """``_unquote`` would succeed on the collected runes (checked without joining them, so a
    long quoted LICENSE stays linear to parse)."""
    count = len(chars)
    start = 0
    while start < count and chars[start] in _TRIM:
        start += 1
    if start == count or chars[start] != '"':
        return True
    end = count - 1
    while chars[end] in _TRIM:
        end -= 1
    length = end - start + 1
    if length >= 3 and chars[start + 1] == '"' and chars[start + 2] == '"':
        return length >= 6 and chars[end] == chars[end - 1] == chars[end - 2] == '"'
    return length >= 2 and chars[end] == '"'


class _State(Enum):
    IDLE = auto()  # between instructions
    COMMENT = auto()
    KEYWORD = auto()
    PARAM_NAME = auto()
    ROLE = auto()
    VALUE = auto()


def parse(text: str | bytes | bytearray) -> Modelfile:
    """Parse Modelfile text (``str``, or ``bytes`` in UTF-8 / BOM-marked UTF-16)."""
    commands: list[Command] = []
    state = _State.IDLE
    line = 1
    chars: list[str] = []
    name = role = ""

    def finish_value() -> None:
        nonlocal role
        value = _unquote("".join(chars).strip(_TRIM))
        if value is None:
            raise ModelfileError(UNEXPECTED_EOF)
        commands.append(Command(name, f"{role}: {value}" if role else value))
        role = ""

    for ch in _decode(text):
        if ch in _NEWLINES:
            line += 1
        if state is _State.IDLE:
            if ch == "#":
                state = _State.COMMENT
            elif ch not in _TRIM:
                state = _State.KEYWORD
                chars = [ch] if _printable(ch) else []
        elif state is _State.COMMENT:
            if ch in _NEWLINES:
                state = _State.IDLE
        elif state is _State.KEYWORD:
            if _is_letter(ch):
                chars.append(ch)
                continue
            keyword = "".join(chars).lower()
            if ch not in _BLANKS or keyword not in COMMANDS:
                raise ModelfileError(INVALID_COMMAND, line)
            chars = []
            if keyword == "parameter":
                state = _State.PARAM_NAME
            elif keyword == "message":
                name, state = "message", _State.ROLE
            else:
                name, state = ("model" if keyword == "from" else keyword), _State.VALUE
        elif state is _State.PARAM_NAME or state is _State.ROLE:
            word = "".join(chars)
            if _is_letter(ch) or (state is _State.PARAM_NAME and _is_name_char(ch)):
                chars.append(ch)
            elif ch not in _BLANKS:
                raise ModelfileError(f"{UNEXPECTED_EOF}: {word}")
            elif state is _State.ROLE and word not in ROLES:
                raise ModelfileError(INVALID_ROLE, line)
            else:
                if state is _State.ROLE:
                    role = word
                else:
                    name = word
                chars, state = [], _State.VALUE
        elif ch in _NEWLINES and _is_balanced(chars):  # _State.VALUE from here on
            finish_value()
            chars, state = [], _State.IDLE
        elif ch in _TRIM or _printable(ch):  # inside a value blanks and open-quote newlines stay
            chars.append(ch)

    if state is _State.VALUE:
        finish_value()
    elif state is not _State.IDLE and state is not _State.COMMENT:
        raise ModelfileError(UNEXPECTED_EOF)
    if not any(command.name == "model" for command in commands):
        raise ModelfileError(MISSING_FROM)
    return Modelfile(commands)
