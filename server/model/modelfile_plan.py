"""A parsed Modelfile → the ``POST /api/create`` body ``llamita create`` sends, as Ollama's CLI builds it.

FROM, ADAPTER and DRAFT arguments that name local files or directories become file maps
(resolved against the Modelfile's directory, with Ollama's path rules and error messages);
everything else becomes request fields.  The files are hashed and uploaded by the caller,
which then fills in their digests (:meth:`CreatePlan.with_digests`).
"""

from __future__ import annotations

import codecs
import fnmatch
import os
import posixpath
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamita.server.options import OptionError, format_params

from .modelfile import Modelfile, ModelfileError

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
