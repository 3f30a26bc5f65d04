"""``POST /api/create``: build a model's layers and manifest the way Ollama does.

The request is Ollama's current shape (``model, from, files, adapters, template, system,
license, parameters, messages, quantize``).  Layers are assembled in Ollama's order: the
GGUF (or the base model's layers, each marked ``from`` the base's short name), then an
autodetected template + params when importing a file, then TEMPLATE, SYSTEM, LICENSE,
merged PARAMETERS, MESSAGES and finally the config blob.  Blob bytes come from
:mod:`gojson`, so the digests equal Ollama's for the same inputs.

One difference, on purpose: Ollama ≥0.30 rewrites an imported GGUF through
``llama-quantize``'s copy mode; llamita stores the GGUF as uploaded, so the model layer's
digest is the file's own sha256 (as Ollama ≤0.12 did).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamita.server import config as envconfig
from llamita.server.gocompat import json as gojson
from llamita.server.gocompat.decode import FieldTypeError, check_struct
from llamita.server.options import OptionError, validate_parameters
from llamita.server.store.blobs import (
    CONFIG_MEDIA_TYPE,
    MEDIA_PREFIX,
    BlobNotFound,
    Layer,
    Store,
    normalize_digest,
)
from llamita.server.store.names import InvalidName, Name, parse_model_ref, require_name
from llamita.server.template import TemplateError
from llamita.server.template import parse as parse_template

from .chat_templates import derive_template
from .create_info import InfoError, apply_info
from .ggufinfo import GGUFInfo, NotGGUFError, human_number, read_gguf
from .model import ModelNotFound
from .quantize import check_quantizable, parse_quantization, quantize

Progress = dict[str, Any]

MODEL = MEDIA_PREFIX + "model"
ADAPTER = MEDIA_PREFIX + "adapter"
PROJECTOR = MEDIA_PREFIX + "projector"
TEMPLATE = MEDIA_PREFIX + "template"
SYSTEM = MEDIA_PREFIX + "system"
PARAMS = MEDIA_PREFIX + "params"
MESSAGES = MEDIA_PREFIX + "messages"
LICENSE = MEDIA_PREFIX + "license"
_GGUF_MEDIA = (MODEL, ADAPTER, PROJECTOR)


class CreateError(Exception):
    """Base class: a create that cannot proceed (nothing it wrote is left in the store).

    A ``from`` that names no stored model raises :class:`ModelNotFound` instead.  The HTTP
    status of each kind is decided in ``server/api/errors.py``.
    """


class InvalidCreateRequest(CreateError):
    """Raised when the request itself is wrong: a field's type, a path, a digest, the name,
    the template, the parameters, the license, the quantization, or a file that is missing
    or not a GGUF.  Checked before anything is stored wherever that is possible."""


class BaseBlobMissing(CreateError):
    """Raised when a layer of the ``from`` model is named in its manifest but not on disk."""


class QuantizationFailed(CreateError):
    """Raised when the quantizer fails on a GGUF the request asked to quantize."""


@dataclass
class _Part:
    """A layer plus the GGUF facts create needs while assembling (None for text layers)."""

    layer: Layer
    gguf: GGUFInfo | None = None
    status: str = ""


def valid_relative_path(path: str) -> bool:
    """Go's ``fs.ValidPath``: unrooted, slash-separated, no ``.``/``..``/empty elements."""
    if path == ".":
        return True
    if not path or path.startswith("/") or "\\" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def existing_name(store: Store, name: Name) -> Name:
    """Reuse the stored casing of each part, as Ollama's ``getExistingName``."""
    parts = list(name.parts)
    seen = [False] * 4
    for manifest in store.iter_manifests():
        for i, part in enumerate(manifest.name.parts):
            if not seen[i] and part.lower() == parts[i].lower():
                parts[i], seen[i] = part, True
    return Name(*parts, scheme=name.scheme)


# Go's CreateRequest (api/types.go): the JSON type each field must have.
CREATE_REQUEST: dict[str, str] = {
    "model": "string",
    "name": "string",
    "stream": "bool",
    "quantize": "string",
    "quantization": "string",
    "from": "string",
    "files": "map[string]string",
    "adapters": "map[string]string",
    "template": "string",
    "license": "interface {}",
    "system": "string",
    "parameters": "map[string]interface {}",
    "messages": "[]api.Message",
    "renderer": "string",
    "parser": "string",
    "requires": "string",
    "info": "map[string]interface {}",
}


def validate(store: Store, request: dict[str, Any]) -> Name:
    """Every check that needs no blob, made before anything is streamed or stored (400s).

    Ollama answers a field of the wrong JSON type with 400 before it starts; the template
    and the parameters are checked here too (Ollama checks them only while creating, or not
    at all for parameters), so that a bad create neither streams nor stores anything and
    no stored model makes every later request fail.
    """
    try:
        check_struct(request, "CreateRequest", CREATE_REQUEST)
    except FieldTypeError as e:
        raise InvalidCreateRequest(str(e)) from e
    for table in ("files", "adapters"):
        for path, digest in (request.get(table) or {}).items():
            if table == "files" and not valid_relative_path(path):
                raise InvalidCreateRequest("file path must be relative")
            if not digest:
                raise InvalidCreateRequest("invalid digest format")
    try:
        name = require_name(request.get("model") or request.get("name") or "")
    except InvalidName as e:
        raise InvalidCreateRequest(str(e)) from e
    _licenses(request.get("license"))
    if request.get("template"):
        try:
            parse_template(request["template"])
        except TemplateError as e:
            raise InvalidCreateRequest(f"template error: {e}") from e
    if request.get("parameters"):
        try:
            validate_parameters(request["parameters"])
        except OptionError as e:
            raise InvalidCreateRequest(str(e)) from e
    return existing_name(store, name)


def _licenses(value: Any) -> list[str]:
    """``license`` is a string or a list of strings (Go: ``any``)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(text, str) for text in value):
        return value
    raise InvalidCreateRequest("license must be a string or a list of strings")


def create(store: Store, request: dict[str, Any]) -> Iterator[Progress]:
    """Run a create, yielding Ollama's progress objects; raises CreateError or ModelNotFound on failure.

    A create that fails (or whose client goes away) before its manifest is written removes
    every blob it added, so the store is left exactly as it was.
    """
    name = validate(store, request)
    with store.name_locks.lock(name.key):  # creates of one name run one at a time; the last wins
        added: list[str] = []  # blobs this create wrote; emptied once the manifest refers to them
        try:
            yield from _create_locked(store, name, request, added)
        finally:
            if added:
                store.remove_unreferenced([Layer("", digest, 0) for digest in added])


def _create_locked(store: Store, name: Name, request: dict[str, Any], added: list[str]) -> Iterator[Progress]:
    old = store.get(name)
    config: dict[str, Any] = {
        "renderer": request.get("renderer") or "",
        "parser": request.get("parser") or "",
        "requires": request.get("requires") or "",
    }
    if request.get("from"):
        parts = _from_model(store, request["from"], config)
    elif request.get("files") is not None:
        parts = yield from _from_files(store, request["files"], media_type=None)
        parts += _detect_template(store, parts, added)
    else:
        raise InvalidCreateRequest("neither 'from' or 'files' was specified")
    if request.get("adapters"):
        adapters = request["adapters"]
        if len(adapters) > 1:
            raise InvalidCreateRequest("only one adapter is currently supported")
        parts += yield from _from_files(store, adapters, media_type=ADAPTER)
    try:
        apply_info(request.get("info"), config)
    except InfoError as e:
        raise InvalidCreateRequest(str(e)) from e

    dropped: list[Layer] = []
    parts = yield from _quantize_parts(store, parts, request, dropped, added)
    layers, cfg = _assemble(store, parts, request, config, dropped, added)
    config_layer = store.write_blob_bytes(gojson.encode(cfg), added)
    config_layer.media_type = CONFIG_MEDIA_TYPE

    for part in layers:
        if part.status:
            yield {"status": part.status}
    yield {"status": "writing manifest"}
    store.write_manifest(name, config_layer, [p.layer for p in layers])
    added.clear()  # the manifest refers to them now
    if not envconfig.no_prune():
        stale = dropped + ([old.config, *old.layers] if old else [])
        store.remove_unreferenced(stale)
    yield {"status": "success"}


def _from_model(store: Store, source: str, config: dict[str, Any]) -> list[_Part]:
    try:  # "x:local" is the local "x", as Ollama reads ``from``
        base_name = require_name(str(parse_model_ref(source)))
    except InvalidName as e:
        raise InvalidCreateRequest("invalid model name") from e
    base = store.get(base_name)
    if base is None:
        raise ModelNotFound(base_name.shortest)
    parts = []
    for layer in base.layers:
        copy = Layer(layer.media_type, layer.digest, layer.size, base.name.shortest, layer.name)
        gguf = None
        if layer.media_type in _GGUF_MEDIA:
            try:
                gguf = read_gguf(store.blob_path(layer.digest))
            except FileNotFoundError as e:
                raise BaseBlobMissing(f"blob {layer.digest} of {base.name.shortest} is missing") from e
        parts.append(_Part(copy, gguf, f"using existing layer {layer.digest}"))
    with contextlib.suppress(BlobNotFound, ValueError, TypeError):
        base_cfg = json.loads(store.read_blob(base.config.digest))
        for key in ("renderer", "parser", "requires"):
            config[key] = config[key] or base_cfg.get(key) or ""
        config["model_format"] = base_cfg.get("model_format") or ""
        config["capabilities"] = base_cfg.get("capabilities") or []
    return parts


def _from_files(store: Store, files: dict[str, str], media_type: str | None) -> Iterator[Progress] | Any:
    """GGUF blobs named in ``files`` → layers (generator returning the parts)."""
    if not files:
        raise InvalidCreateRequest("no files provided to convert")
    parts = []
    for path in sorted(files):
        digest = files[path]
        yield {"status": "parsing GGUF"}
        try:
            blob = store.blob_path(digest)
        except ValueError as e:
            raise InvalidCreateRequest(str(e)) from e
        if not blob.is_file():
            raise InvalidCreateRequest(f'blob "{normalize_digest(digest)}" not found; upload it first')
        try:
            info = read_gguf(blob)
        except NotGGUFError as e:
            raise InvalidCreateRequest(str(e)) from e
        kind = media_type or (ADAPTER if info.is_adapter else PROJECTOR if info.is_projector else MODEL)
        # Ollama's ggufLayers: every layer made from a file says which (its name in ``files``).
        layer = Layer(kind, normalize_digest(digest), blob.stat().st_size, path)
        parts.append(_Part(layer, info, f"using existing layer {layer.digest}"))
    return parts


def _detect_template(store: Store, parts: list[_Part], added: list[str]) -> list[_Part]:
    """Ollama's template autodetection, extended with FIM branches for coder GGUFs."""
    for part in parts:
        if part.gguf is None or part.layer.media_type != MODEL:
            continue
        derived = derive_template(part.gguf)
        if derived is None:
            continue
        template = _text_part(store, derived.template, TEMPLATE, added)
        template.status = f"using autodetected template {derived.name}"
        detected = [template]
        if derived.params:
            detected.append(_text_part(store, gojson.encode(derived.params), PARAMS, added))
        return detected
    return []


def _quantize_parts(
    store: Store, parts: list[_Part], request: dict[str, Any], dropped: list[Layer], added: list[str]
) -> Iterator[Progress] | Any:
    wanted = (request.get("quantize") or request.get("quantization") or "").upper()
    if not wanted:
        return parts
    try:
        target = parse_quantization(wanted)
    except ValueError as e:
        raise InvalidCreateRequest(str(e)) from e
    out = []
    for part in parts:
        if part.layer.media_type != MODEL or part.gguf is None:
            out.append(part)
            continue
        try:
            check_quantizable(part.gguf.file_type)
        except ValueError as e:
            raise InvalidCreateRequest(str(e)) from e
        if part.gguf.file_type == target:
            out.append(part)
            continue
        out.append((yield from _quantize_one(store, part, target, added)))
        dropped.append(part.layer)
    return out


def _quantize_one(store: Store, part: _Part, target: str, added: list[str]) -> Iterator[Progress] | Any:
    """Quantize in a worker thread and relay its progress as Ollama's status lines."""
    status = f"quantizing {part.gguf.file_type if part.gguf else ''} model to {target}"
    events: list[tuple[int, int]] = []
    done = threading.Event()
    error: list[BaseException] = []
    tmp = store.blobs / f".tmp-quantize-{part.layer.digest[7:19]}-{threading.get_ident()}"

    def progress(completed: int, total: int) -> None:
        events.append((completed, total))

    def work() -> None:
        try:
            quantize(store.blob_path(part.layer.digest), tmp, target, progress)
        except BaseException as e:  # relayed to the caller below
            error.append(e)
        finally:
            done.set()

    thread = threading.Thread(target=work, name="quantize", daemon=True)
    thread.start()
    try:
        last = (0, 0)
        while not done.wait(0.25):
            if events and events[-1] != last:
                last = events[-1]
                yield _quantize_status(status, *last)
        if error:
            raise QuantizationFailed(f"quantization failed: {error[0]}")
        if events:
            yield _quantize_status(status, *events[-1])
        digest, size = store.import_file(tmp, added=added)
    finally:
        thread.join(timeout=0)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    info = read_gguf(store.blob_path(digest))
    layer = Layer(MODEL, digest, size)
    return _Part(layer, info, f"creating new layer {digest}")


def _quantize_status(status: str, completed: int, total: int) -> Progress:
    return {"status": status, "digest": "0000000000000000000", "total": total, "completed": completed}


def _assemble(
    store: Store,
    parts: list[_Part],
    request: dict[str, Any],
    config: dict[str, Any],
    dropped: list[Layer],
    added: list[str],
) -> tuple[list[_Part], gojson.Struct]:
    families: list[str] = list(config.get("model_families") or [])  # info's model_family first
    for part in parts:
        info = part.gguf
        if info is None or part.layer.media_type != MODEL:
            continue
        config["model_format"] = config.get("model_format") or "gguf"
        config["model_family"] = config.get("model_family") or info.architecture
        config["model_type"] = config.get("model_type") or human_number(info.parameter_count)
        config["file_type"] = config.get("file_type") or info.file_type
        families.append(info.architecture)

    def replace(new: _Part) -> None:
        nonlocal parts
        kind = new.layer.media_type
        dropped.extend(p.layer for p in parts if p.layer.media_type == kind)
        parts = [p for p in parts if p.layer.media_type != kind]
        parts.append(new)

    # validate() has checked the template, license, parameters and message types.
    if request.get("template"):
        replace(_text_part(store, request["template"], TEMPLATE, added))
    if request.get("system"):
        replace(_text_part(store, request["system"], SYSTEM, added))
    for text in _licenses(request.get("license")):
        parts.append(_text_part(store, text, LICENSE, added))
    params = _merged_params(store, parts, request.get("parameters"))
    if params:
        replace(_text_part(store, gojson.encode(params), PARAMS, added))
    messages = request.get("messages") or []
    if messages:
        replace(_text_part(store, gojson.encode([_message(m) for m in messages]), MESSAGES, added))

    cfg = gojson.Struct(
        model_format=config.get("model_format", ""),
        model_family=config.get("model_family", ""),
        model_families=families or None,
        model_type=config.get("model_type", ""),
        file_type=config.get("file_type", ""),
    )
    for key in ("renderer", "parser", "requires"):
        if config.get(key):
            cfg[key] = config[key]
    if config.get("capabilities"):
        cfg["capabilities"] = config["capabilities"]
    for key in ("context_length", "embedding_length", "base_name"):  # Go's omitempty
        if config.get(key):
            cfg[key] = config[key]
    cfg["architecture"] = "amd64"
    cfg["os"] = "linux"
    return parts, cfg


def _merged_params(store: Store, parts: list[_Part], requested: dict[str, Any] | None) -> dict[str, Any]:
    """Request parameters win; inherited ones fill the gaps (lists replaced, not merged)."""
    params = dict(requested or {})
    for part in parts:
        if part.layer.media_type != PARAMS:
            continue
        existing = json.loads(store.read_blob(part.layer.digest))
        for key, value in existing.items():
            params.setdefault(key, value)
    return params


_MESSAGE_FIELDS = ("role", "content", "thinking", "images", "tool_calls", "tool_name", "tool_call_id")


def _message(m: dict[str, Any]) -> gojson.Struct:
    """One stored message; validate() has checked that it is an api.Message."""
    out = gojson.Struct(role=(m.get("role") or "").lower(), content=m.get("content") or "")
    for key in _MESSAGE_FIELDS[2:]:
        if m.get(key):
            out[key] = m[key]
    return out


def _text_part(store: Store, content: str | bytes, media_type: str, added: list[str]) -> _Part:
    """A raw-bytes layer (template, system, params…) with Ollama's creating/using status."""
    data = content.encode() if isinstance(content, str) else content
    count = len(added)
    layer = store.write_blob_bytes(data, added)
    layer.media_type = media_type
    verb = "creating new" if len(added) > count else "using existing"
    return _Part(layer, None, f"{verb} layer {layer.digest}")


def import_gguf(
    store: Store,
    name: str,
    path: Path,
    emit: Callable[[Progress], None] | None = None,
    *,
    system: str = "",
    template: str = "",
) -> None:
    """Import a local GGUF as ``name`` through the same path as ``llamita create``.

    A failed import takes its GGUF blob back out of the store, as a failed create does.
    """
    added: list[str] = []
    digest, _ = store.import_file(path, added=added)
    request: dict[str, object] = {"model": name, "files": {path.name: digest}}
    if system:
        request["system"] = system
    if template:
        request["template"] = template
    try:
        for event in create(store, request):
            if emit:
                emit(event)
    except BaseException:
        store.remove_unreferenced([Layer("", d, 0) for d in added])
        raise
