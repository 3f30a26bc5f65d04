r"""Modelfiles: parsing, serialising, and turning one into an ``/api/create`` request.

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
import fnmatch
import os
import posixpath
import re
import stat
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, auto
from pathlib import Path
from typing import Any

from llamita.server.options import OptionError, format_params

__all__ = ["Command", "CreatePlan", "Modelfile", "ModelfileError", "parse", "quote", "to_create_request"]

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


# --------------------------------------------------------------------------------------------
# Modelfile -> POST /api/create
# --------------------------------------------------------------------------------------------

_OCTET = "application/octet-stream"
_TEXT = "text/plain"
_ZIP = "application/zip"
_BINARY_BYTES = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])

_NUM = r"(?:0|[1-9][0-9]*)"
_PRE = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD = r"[0-9A-Za-z-]+"
# golang.org/x/mod/semver: "v1" and "v1.2" are valid shorthands; pre-release and build
# suffixes need all three numbers.
_SEMVER = re.compile(
    rf"v{_NUM}(?:\.{_NUM}(?:\.{_NUM}(?:-{_PRE}(?:\.{_PRE})*)?(?:\+{_BUILD}(?:\.{_BUILD})*)?)?)?"
)


@dataclass
class CreatePlan:
    """What ``llamita create`` sends to ``POST /api/create``, before the files are uploaded.

    ``request`` is the JSON body without ``model`` and without the digest maps.  ``files``,
    ``adapters`` and ``draft_files`` map the name the server will see (a path relative to the
    files' common directory, or the base name of a lone file) to the local file to hash and
    upload as a blob.
    """

    request: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    adapters: dict[str, Path] = field(default_factory=dict)
    draft_files: dict[str, Path] = field(default_factory=dict)

    def with_digests(self, digests: Mapping[Path, str]) -> dict[str, Any]:
        """The final request body, given the ``sha256:<hex>`` digest of every local file."""
        body = dict(self.request)
        for key, table in (
            ("files", self.files),
            ("adapters", self.adapters),
            ("draft_files", self.draft_files),
        ):
            if table:
                body[key] = {name: digests[path] for name, path in table.items()}
        return body


def _os_error(action: str, path: str, error: OSError) -> ModelfileError:
    """Word an OSError like Go's ``*PathError`` (``stat /x: no such file or directory``)."""
    reason = error.strerror or str(error)
    return ModelfileError(f"{action} {path}: {reason[:1].lower()}{reason[1:]}")


def _expand_path(arg: str, base_dir: Path | str) -> str:
    """Absolute path for a FROM/ADAPTER/DRAFT argument: ``~`` and ``~user`` are expanded and
    relative paths resolve against the Modelfile's directory.  Symlinks are kept."""
    if arg.startswith(("/", "\\")) or os.path.isabs(arg):
        return os.path.abspath(arg)
    if arg.startswith("~"):
        user, _, rest = arg[1:].partition("/")
        if not user:
            home = os.path.expanduser("~")
        else:
            import pwd  # POSIX-only, and only needed for the rare ~user form

            try:
                home = pwd.getpwnam(user).pw_dir
            except KeyError:
                raise ModelfileError(f"failed to find user '{user}': user: unknown user {user}") from None
        return os.path.abspath(f"{home}/{rest}")
    return os.path.abspath(os.path.join(base_dir, arg))


def _looks_like_path(arg: str) -> bool:
    """A missing FROM target that was clearly meant as a file (Ollama would instead try to
    pull it as a model and fail with a confusing name error)."""
    return arg.startswith((".", "/", "~", "\\")) or arg.lower().endswith(".gguf")


def _sniff(path: str) -> str:
    """The part of Go's ``http.DetectContentType`` that decides Ollama's model-file globs."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as error:
        raise _os_error("open", path, error) from error
    if head.startswith((codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF8)):
        return _TEXT
    if head.startswith(b"PK\x03\x04"):
        return _ZIP
    if head.startswith(b"\x1f\x8b\x08"):
        return "application/x-gzip"
    return _OCTET if any(byte in _BINARY_BYTES for byte in head) else _TEXT


def _glob(directory: str, pattern: str, content_type: str = "") -> list[str]:
    """Sorted files matching a ``/``-separated pattern (``*`` also matches dot files, as in
    Go), each checked against ``content_type`` when one is given."""
    matches = [directory]
    for part in pattern.split("/"):
        found: list[str] = []
        for base in matches:
            try:
                names = sorted(os.listdir(base))
            except OSError:
                continue
            found.extend(os.path.join(base, n) for n in names if fnmatch.fnmatchcase(n, part))
        matches = found
    matches = [m for m in matches if os.path.isfile(m)]
    for match in matches:
        actual = _sniff(match)
        if content_type and actual != content_type:
            # Ollama's wording, which names the detected type as "expected".
            raise ModelfileError(f"invalid content type: expected {actual} for {match}")
    return matches


def _optional_glob(directory: str, pattern: str, content_type: str = "") -> list[str]:
    """Ollama ignores errors from the globs that only choose which weights to take."""
    try:
        return _glob(directory, pattern, content_type)
    except ModelfileError:
        return []


def _model_dir_files(directory: str) -> list[str]:
    """The files of a model directory, in Ollama's order of preference for the weights
    (safetensors, pytorch, GGUF), plus configs, chat template and tokenizer."""
    if weights := _optional_glob(directory, "model*.safetensors"):
        weights += _glob(directory, "*/model*.safetensors")
    else:
        for pattern, content_type in (
            ("consolidated*.safetensors", ""),
            ("pytorch_model*.bin", _ZIP),
            ("consolidated*.pth", _ZIP),
            ("*.gguf", _OCTET),
            ("*.bin", _OCTET),
        ):
            if weights := _optional_glob(directory, pattern, content_type):
                break
        else:
            raise ModelfileError("no Modelfile or safetensors files found")
    files = weights + _glob(directory, "*.json", _TEXT) + _glob(directory, "*/*.json", _TEXT)
    files += _glob(directory, "chat_template.jinja", _TEXT)
    files += _optional_glob(directory, "tokenizer.model", _OCTET) or _optional_glob(
        directory, "*/tokenizer.model", _TEXT
    )
    root = os.path.realpath(directory)
    resolved: list[str] = []
    for file in files:
        real = os.path.realpath(file)
        rel = os.path.relpath(real, root)
        if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
            hint = ""
            if ".cache" in rel:
                hint = "\n\nUse --local-dir <dir> when downloading model to disable caching"
            raise ModelfileError(f"insecure path: {rel}{hint}")
        resolved.append(real)
    return resolved


def _local_files(path: str) -> list[str]:
    """The files a FROM/ADAPTER/DRAFT path stands for; FileNotFoundError when it is absent."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise _os_error("stat", path, error) from error
    return _model_dir_files(path) if stat.S_ISDIR(info.st_mode) else [path]


def _existing_files(path: str) -> list[str]:
    try:
        return _local_files(path)
    except FileNotFoundError as error:
        raise _os_error("stat", path, error) from error


def _reject_same_path(path: str, others: Iterable[str]) -> None:
    """A draft model that is the main model itself would just double the memory."""
    canonical = os.path.realpath(path)
    if any(os.path.realpath(other) == canonical for other in others):
        raise ModelfileError(f"DRAFT must not reference the same local path as FROM: {path}")


def _request_names(paths: Iterable[str]) -> dict[str, Path]:
    """Name files relative to their common directory so that multi-file models keep their
    layout (``tokenizer/config.json``); a lone file is known by its base name."""
    unique = list(dict.fromkeys(paths))
    root = os.path.commonpath([os.path.dirname(p) for p in unique]) if len(unique) >= 2 else None
    names: dict[str, Path] = {}
    for path in unique:
        name = os.path.basename(path)
        if root is not None:
            rel = os.path.relpath(path, root)
            if rel not in (".", "..") and not rel.startswith(".." + os.sep):
                name = rel
        names[posixpath.normpath(name.replace(os.sep, "/"))] = Path(path)
    return names


def _check_requires(version: str) -> str:
    """REQUIRES must be semver; the "v" prefix is optional and never sent."""
    prefixed = version if version.startswith("v") else f"v{version}"
    if not _SEMVER.fullmatch(prefixed):
        raise ModelfileError("requires must be a valid semver (e.g. 0.14.0)")
    return prefixed[1:]


def to_create_request(mf: Modelfile, base_dir: Path | str) -> CreatePlan:
    """Build the ``/api/create`` request the CLI sends for ``mf`` (Ollama's ``CreateRequest``).

    ``base_dir`` is the Modelfile's directory.  A FROM naming an existing file or directory
    contributes ``files`` (several FROMs merge); any other FROM is a model name (``from``),
    except that a missing target that is plainly a path is an error here rather than a failed
    pull later.  ADAPTER and DRAFT must exist; a later ADAPTER replaces an earlier one.
    PARAMETERs are typed (repeated list options accumulate, scalars keep the last value);
    empty strings are left out as Go's ``omitempty`` does.  Every problem is a
    :class:`ModelfileError` carrying Ollama's message.
    """
    strings: dict[str, str] = {}
    model_files: list[str] = []
    draft_files: list[str] = []
    adapter_files: list[str] = []
    model_paths: list[str] = []
    draft_paths: list[str] = []
    licenses: list[str] = []
    messages: list[dict[str, str]] = []
    params: dict[str, Any] = {}

    for command in mf.commands:
        kind, args = command.name, command.args
        if kind == "model":
            path = _expand_path(args, base_dir)
            try:
                found = _local_files(path)
            except FileNotFoundError as error:
                if _looks_like_path(args):
                    raise _os_error("stat", path, error) from error
                strings["from"] = args
                continue
            _reject_same_path(path, draft_paths)
            model_paths.append(path)
            model_files.extend(found)
        elif kind == "draft":
            path = _expand_path(args, base_dir)
            found = _existing_files(path)
            _reject_same_path(path, model_paths)
            draft_paths.append(path)
            draft_files.extend(found)
        elif kind == "adapter":
            adapter_files = _existing_files(_expand_path(args, base_dir))
        elif kind in ("template", "system", "renderer", "parser"):
            strings[kind] = args
        elif kind == "requires":
            strings[kind] = _check_requires(args)
        elif kind == "license":
            licenses.append(args)
        elif kind == "message":
            role, _, content = args.partition(": ")
            messages.append({"role": role, "content": content})
        else:
            try:
                typed = format_params({kind: [args]})
            except OptionError as error:
                raise ModelfileError(str(error)) from error
            for key, value in typed.items():
                existing = params.get(key)
                if isinstance(existing, list) and isinstance(value, list):
                    existing.extend(value)
                else:
                    params[key] = list(value) if isinstance(value, list) else value

    request: dict[str, Any] = {}
    for key in ("from", "template"):
        if strings.get(key):
            request[key] = strings[key]
    if licenses:
        request["license"] = licenses
    if strings.get("system"):
        request["system"] = strings["system"]
    if params:
        request["parameters"] = params
    if messages:
        request["messages"] = messages
    for key in ("renderer", "parser", "requires"):
        if strings.get(key):
            request[key] = strings[key]
    return CreatePlan(
        request=request,
        files=_request_names(model_files),
        adapters=_request_names(adapter_files),
        draft_files=_request_names(draft_files),
    )
