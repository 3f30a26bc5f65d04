"""Tokenizer for Go ``text/template`` source.

Model templates are written for Go's engine, so the scanner follows Go's lexer rules exactly:
``{{``/``}}`` delimiters, ``{{- `` / `` -}}`` trim markers (the dash must touch the delimiter and be
separated from the action by a space, tab or newline, so ``{{-3}}`` stays the number -3), comments
that must hug the delimiters, and the same token boundaries (``.A.B`` is two field tokens).
Errors surface as ``ERROR`` tokens so that the parser reports them in source order, as Go does.
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple

from llamita.server.gocompat.fmt import quote as go_quote


class TemplateError(Exception):
    """A parse or execution failure; the message follows Go's ``template: :<line>: ...`` wording."""


class TokenType(enum.Enum):
    ERROR = "error"
    BOOL = "bool"
    CHAR = "char"  # a printable ASCII character that means nothing on its own, e.g. ","
    CHAR_CONSTANT = "char constant"
    COMPLEX = "complex"
    ASSIGN = "="
    DECLARE = ":="
    EOF = "EOF"
    FIELD = "field"
    IDENTIFIER = "identifier"
    LEFT_DELIM = "{{"
    LEFT_PAREN = "("
    NUMBER = "number"
    PIPE = "|"
    RAW_STRING = "raw string"
    RIGHT_DELIM = "}}"
    RIGHT_PAREN = ")"
    SPACE = "space"
    STRING = "string"
    TEXT = "text"
    VARIABLE = "variable"
    # keywords
    BLOCK = "block"
    BREAK = "break"
    CONTINUE = "continue"
    DOT = "."
    DEFINE = "define"
    ELSE = "else"
    END = "end"
    IF = "if"
    NIL = "nil"
    RANGE = "range"
    TEMPLATE = "template"
    WITH = "with"


T = TokenType

KEYWORDS: dict[str, TokenType] = {
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "nil": T.NIL,
    "range": T.RANGE,
    "template": T.TEMPLATE,
    "with": T.WITH,
}
_KEYWORD_TYPES = frozenset(KEYWORDS.values()) | {T.DOT}

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"
SPACE_CHARS = " \t\r\n"
_TERMINATORS = frozenset(".,|:)(")
_DECIMAL = "0123456789_"
_HEX = "0123456789abcdefABCDEF_"


def rune_repr(ch: str) -> str:
    """Go's ``%#U`` rendering of a character, e.g. ``U+0041 'A'``."""
    if not ch:
        return "U+FFFFFFFF"  # Go prints eof (-1) this way
    code = ord(ch)
    return f"U+{code:04X} '{ch}'" if ch.isprintable() else f"U+{code:04X}"


class Token(NamedTuple):
    type: TokenType
    pos: int  # byte-ish offset: index into the source string
    val: str
    line: int

    def __str__(self) -> str:
        """Mirror Go's ``item.String`` so error messages read the same."""
        if self.type is T.EOF:
            return "EOF"
        if self.type is T.ERROR:
            return self.val
        if self.type in _KEYWORD_TYPES:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def is_alnum(ch: str) -> bool:
    """Go's ``isAlphaNumeric``: underscore, Unicode letter or decimal digit."""
    return ch == "_" or ch.isalpha() or ch.isdecimal()


def _has_left_trim(src: str, i: int) -> bool:
    return src.startswith("-", i) and i + 1 < len(src) and src[i + 1] in SPACE_CHARS


def _has_right_trim(src: str, i: int) -> bool:
    return 0 <= i < len(src) and src[i] in SPACE_CHARS and src.startswith("-", i + 1)


class _Lexer:
    """State machine over the source; each ``_lex_*`` method returns the next state or None."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.tokens: list[Token] = []
        self._line_pos = 0
        self._line = 1

    def _line_at(self, pos: int) -> int:
        if pos >= self._line_pos:
            self._line += self.src.count("\n", self._line_pos, pos)
        else:
            self._line -= self.src.count("\n", pos, self._line_pos)
        self._line_pos = pos
        return self._line

    def emit(self, typ: TokenType) -> None:
        self.tokens.append(Token(typ, self.start, self.src[self.start : self.pos], self._line_at(self.start)))
        self.start = self.pos

    def error(self, msg: str) -> None:
        self.tokens.append(Token(T.ERROR, self.start, msg, self._line_at(self.start)))
        return None

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else ""

    def run(self) -> list[Token]:
        state = self._lex_text
        while state is not None:
            state = state()
        return self.tokens

    def _at_right_delim(self) -> tuple[bool, bool]:
        """Report (at a right delimiter, with a trim marker before it)."""
        if self.src.startswith(RIGHT_DELIM, self.pos):
            return True, False
        if _has_right_trim(self.src, self.pos) and self.src.startswith(RIGHT_DELIM, self.pos + 2):
            return True, True
        return False, False

    def _at_terminator(self) -> bool:
        r = self.peek()
        return r == "" or r in SPACE_CHARS or r in _TERMINATORS or self.src.startswith(RIGHT_DELIM, self.pos)

    def _lex_text(self):
        src = self.src
        x = src.find(LEFT_DELIM, self.pos)
        if x < 0:
            self.pos = len(src)
            if self.pos > self.start:
                self.emit(T.TEXT)
            self.emit(T.EOF)
            return None
        end = x
        if _has_left_trim(src, x + len(LEFT_DELIM)):
            text = src[self.start : x]
            end = x - (len(text) - len(text.rstrip(SPACE_CHARS)))
        if end > self.start:
            self.pos = end
            self.emit(T.TEXT)
        self.pos = self.start = x
        return self._lex_left_delim

    def _lex_left_delim(self):
        self.pos += len(LEFT_DELIM)
        after = 2 if _has_left_trim(self.src, self.pos) else 0
        if self.src.startswith(LEFT_COMMENT, self.pos + after):
            self.pos += after
            self.start = self.pos
            return self._lex_comment
        self.emit(T.LEFT_DELIM)
        self.pos += after
        self.start = self.pos
        self.paren_depth = 0
        return self._lex_inside_action

    def _lex_comment(self):
        self.pos += len(LEFT_COMMENT)
        x = self.src.find(RIGHT_COMMENT, self.pos)
        if x < 0:
            return self.error("unclosed comment")
        self.pos = x + len(RIGHT_COMMENT)
        delim, trim = self._at_right_delim()
        if not delim:
            return self.error("comment ends before closing delimiter")
        self.pos += (2 if trim else 0) + len(RIGHT_DELIM)
        if trim:
            self.pos = len(self.src) - len(self.src[self.pos :].lstrip(SPACE_CHARS))
        self.start = self.pos
        return self._lex_text

    def _lex_right_delim(self):
        trim = _has_right_trim(self.src, self.pos)
        if trim:
            self.pos += 2
            self.start = self.pos
        self.pos += len(RIGHT_DELIM)
        self.emit(T.RIGHT_DELIM)
        if trim:
            self.pos = len(self.src) - len(self.src[self.pos :].lstrip(SPACE_CHARS))
            self.start = self.pos
        return self._lex_text

    def _lex_inside_action(self):
        delim, _ = self._at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self._lex_right_delim
            return self.error("unclosed left paren")
        r = self.peek()
        if r == "":
            return self.error("unclosed action")
        if r in SPACE_CHARS:
            return self._lex_space
        self.pos += 1
        if r == "=":
            self.emit(T.ASSIGN)
        elif r == ":":
            if self.peek() != "=":
                return self.error("expected :=")
            self.pos += 1
            self.emit(T.DECLARE)
        elif r == "|":
            self.emit(T.PIPE)
        elif r == '"':
            return self._lex_quote
        elif r == "`":
            return self._lex_raw_quote
        elif r == "$":
            return self._lex_variable
        elif r == "'":
            return self._lex_char
        elif r == "." and self.peek() != "" and not "0" <= self.peek() <= "9":
            return self._lex_field
        elif r in "+-." or "0" <= r <= "9":
            self.pos -= 1
            return self._lex_number
        elif is_alnum(r):
            self.pos -= 1
            return self._lex_identifier
        elif r == "(":
            self.emit(T.LEFT_PAREN)
            self.paren_depth += 1
        elif r == ")":
            self.emit(T.RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self.error(f"unexpected right paren {rune_repr(r)}")
        elif r <= "\x7f" and r.isprintable():
            self.emit(T.CHAR)
        else:
            return self.error(f"unrecognized character in action: {rune_repr(r)}")
        return self._lex_inside_action

    def _lex_space(self):
        src = self.src
        spaces = 0
        while self.peek() != "" and self.peek() in SPACE_CHARS:
            self.pos += 1
            spaces += 1
        # A space may belong to a " -}}" trim marker: leave it for the right delimiter.
        if _has_right_trim(src, self.pos - 1) and src.startswith(RIGHT_DELIM, self.pos + 1):
            self.pos -= 1
            if spaces == 1:
                return self._lex_right_delim
        self.emit(T.SPACE)
        return self._lex_inside_action

    def _lex_identifier(self):
        while self.peek() != "" and is_alnum(self.peek()):
            self.pos += 1
        if not self._at_terminator():
            return self.error(f"bad character {rune_repr(self.peek())}")
        word = self.src[self.start : self.pos]
        if word in KEYWORDS:
            self.emit(KEYWORDS[word])
        elif word in ("true", "false"):
            self.emit(T.BOOL)
        else:
            self.emit(T.IDENTIFIER)
        return self._lex_inside_action

    def _lex_field(self):
        return self._lex_field_or_variable(T.FIELD)

    def _lex_variable(self):
        if self._at_terminator():  # a lone "$"
            self.emit(T.VARIABLE)
            return self._lex_inside_action
        return self._lex_field_or_variable(T.VARIABLE)

    def _lex_field_or_variable(self, typ: TokenType):
        if self._at_terminator():  # nothing follows: "." (dot) or "$"
            self.emit(T.VARIABLE if typ is T.VARIABLE else T.DOT)
            return self._lex_inside_action
        while self.peek() != "" and is_alnum(self.peek()):
            self.pos += 1
        if not self._at_terminator():
            return self.error(f"bad character {rune_repr(self.peek())}")
        self.emit(typ)
        return self._lex_inside_action

    def _lex_char(self):
        return self._lex_escaped("'", T.CHAR_CONSTANT, "unterminated character constant")

    def _lex_escaped(self, close: str, kind: TokenType, unterminated: str):
        """A quoted token with backslash escapes that may not span lines ('c' or "text")."""
        while True:
            r = self.peek()
            self.pos += 1
            if r == "\\":
                nxt = self.peek()
                if nxt not in ("", "\n"):
                    self.pos += 1
                    continue
                return self.error(unterminated)
            if r in ("", "\n"):
                return self.error(unterminated)
            if r == close:
                break
        self.emit(kind)
        return self._lex_inside_action

    def _accept(self, valid: str) -> bool:
        if self.peek() != "" and self.peek() in valid:
            self.pos += 1
            return True
        return False

    def _accept_run(self, valid: str) -> None:
        while self._accept(valid):
            pass

    def _scan_number(self) -> bool:
        """Accept anything number-shaped (like Go, sloppily); the parser validates the text."""
        self._accept("+-")
        digits = _DECIMAL
        if self._accept("0"):
            if self._accept("xX"):
                digits = _HEX
            elif self._accept("oO"):
                digits = "01234567_"
            elif self._accept("bB"):
                digits = "01_"
        self._accept_run(digits)
        if self._accept("."):
            self._accept_run(digits)
        if digits is _DECIMAL and self._accept("eE"):
            self._accept("+-")
            self._accept_run(_DECIMAL)
        if digits is _HEX and self._accept("pP"):
            self._accept("+-")
            self._accept_run(_DECIMAL)
        self._accept("i")
        if self.peek() != "" and is_alnum(self.peek()):
            self.pos += 1
            return False
        return True

    def _lex_number(self):
        if not self._scan_number():
            return self.error(f"bad number syntax: {go_quote(self.src[self.start : self.pos])}")
        if self.peek() in ("+", "-"):
            # complex constant such as 1+2i: no spaces, must end in 'i'
            if not self._scan_number() or self.src[self.pos - 1] != "i":
                return self.error(f"bad number syntax: {go_quote(self.src[self.start : self.pos])}")
            self.emit(T.COMPLEX)
        else:
            self.emit(T.NUMBER)
        return self._lex_inside_action

    def _lex_quote(self):
        return self._lex_escaped('"', T.STRING, "unterminated quoted string")

    def _lex_raw_quote(self):
        x = self.src.find("`", self.pos)
        if x < 0:
            self.pos = len(self.src)
            return self.error("unterminated raw quoted string")
        self.pos = x + 1
        self.emit(T.RAW_STRING)
        return self._lex_inside_action


def lex(src: str) -> list[Token]:
    """Scan ``src`` into tokens; the list always ends with an ``EOF`` or ``ERROR`` token."""
    return _Lexer(src).run()


# --------------------------------------------------------------------------- literals

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_HEX_DIGITS = "0123456789abcdefABCDEF"
_INT_RE = re.compile(
    r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)\Z"
)


def _unquote_char(s: str, i: int, quote: str) -> tuple[bytes, int]:
    """Decode one (possibly escaped) character of a Go literal at ``s[i]``; return its UTF-8 bytes."""
    ch = s[i]
    if ch != "\\":
        if ch == quote:
            raise ValueError("invalid syntax")
        return ch.encode("utf-8", "surrogatepass"), i + 1
    if i + 1 >= len(s):
        raise ValueError("invalid syntax")
    c = s[i + 1]
    if c in _ESCAPES:
        return _ESCAPES[c].encode(), i + 2
    if c in "'\"":
        if c != quote:
            raise ValueError("invalid syntax")
        return c.encode(), i + 2
    if c in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[c]
        digits = s[i + 2 : i + 2 + n]
        if len(digits) != n or any(d not in _HEX_DIGITS for d in digits):
            raise ValueError("invalid syntax")
        value = int(digits, 16)
        if c == "x":
            return bytes([value]), i + 2 + n
        if value > 0x10FFFF or 0xD800 <= value < 0xE000:
            raise ValueError("invalid syntax")
        return chr(value).encode(), i + 2 + n
    if "0" <= c <= "7":
        digits = s[i + 1 : i + 4]
        if len(digits) != 3 or any(not "0" <= d <= "7" for d in digits) or int(digits, 8) > 255:
            raise ValueError("invalid syntax")
        return bytes([int(digits, 8)]), i + 4
    raise ValueError("invalid syntax")


def unquote(literal: str) -> str:
    """Go's ``strconv.Unquote`` for "double-quoted" and `raw` string literals."""
    if len(literal) < 2 or literal[0] != literal[-1]:
        raise ValueError("invalid syntax")
    body = literal[1:-1]
    if literal[0] == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    if literal[0] != '"' or "\n" in body:
        raise ValueError("invalid syntax")
    out = bytearray()
    i = 0
    while i < len(body):
        chunk, i = _unquote_char(body, i, '"')
        out += chunk
    return out.decode("utf-8", "replace")


def parse_number(text: str, typ: T) -> int | float:
    """Evaluate a number token to Go's ideal constant: int unless it is written like a float."""
    if typ is T.CHAR_CONSTANT:
        body = text[1:]
        try:
            chunk, end = _unquote_char(body, 0, "'")
        except (ValueError, IndexError):
            raise ValueError("invalid syntax") from None
        if body[end:] != "'":
            raise ValueError(f"malformed character constant: {text}")
        decoded = chunk.decode("utf-8", "surrogatepass") if len(chunk) > 1 else chr(chunk[0])
        return ord(decoded)
    if typ is T.COMPLEX or text.endswith("i"):
        raise ValueError(f"complex constants are not supported: {go_quote(text)}")
    if _INT_RE.match(text):
        sign = -1 if text[0] == "-" else 1
        digits = text.lstrip("+-").replace("_", "")
        if len(digits) > 1 and digits[0] == "0" and digits[1] in "01234567_":
            return sign * int(digits, 8)
        return sign * int(digits, 0)
    try:
        value = float.fromhex(text) if "x" in text.lower() else float(text)
    except ValueError:
        raise ValueError(f"illegal number syntax: {go_quote(text)}") from None
    if not any(c in text for c in ".eEpP"):
        raise ValueError(f"integer overflow: {go_quote(text)}")
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"illegal number syntax: {go_quote(text)}")
    return value
